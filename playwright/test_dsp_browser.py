"""static/audio/pcm.js inside real Chromium and Firefox: the golden files must come out the same as under Node.

The page imports /static/audio/pcm.js (served by the app) with a dynamic import(); golden inputs are served on a
fake same-origin path by page.route; the browser returns its outputs as base64 and the comparison happens here.
"""

from __future__ import annotations

import base64

import numpy as np
from playwright.sync_api import Page, Playwright, Route

from tests.golden import DATA_DIR, convert_cases, load_manifest, read_s16, resample_cases
from tests.support.browsers import launch, new_page

TEST_PAGE = "/__dsp_test"
GOLDEN_PREFIX = "/__golden/"

RUN_GOLDEN = """
async ({cases, converts, pipelineCase}) => {
  const pcm = await import('/static/audio/pcm.js');
  const load = async (name) => new Float32Array(await (await fetch('/__golden/' + name)).arrayBuffer());
  const b64 = (a) => {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = '';
    for (let k = 0; k < bytes.length; k += 0x8000) s += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
    return btoa(s);
  };
  const join = (parts, Type) => {
    const out = new Type(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };
  const run = (x, inRate, outRate, chunk) => {
    const r = new pcm.Resampler(inRate, outRate);
    const parts = [];
    for (let k = 0; k < x.length; k += chunk) parts.push(r.process(x.subarray(k, k + chunk)));
    parts.push(r.flush());
    return join(parts, Float32Array);
  };
  const out = {agent: navigator.userAgent, resample: {}, convert: {}, pipeline: null};
  for (const c of cases) {
    const x = await load(c.input);
    const once = run(x, c.in_rate, c.out_rate, x.length);
    const chunked = run(x, c.in_rate, c.out_rate, 128);
    out.resample[c.output] = {pcm: b64(pcm.floatTo16BitPCM(once)), once: b64(once), chunked: b64(chunked)};
  }
  for (const c of converts) out.convert[c.output] = b64(pcm.floatTo16BitPCM(await load(c.input)));
  const x = await load(pipelineCase.input);
  const p = new pcm.PcmPipeline({inRate: pipelineCase.in_rate, outRate: pipelineCase.out_rate, frameSamples: 1600});
  const frames = [];
  for (let k = 0; k < x.length; k += 128) frames.push(...p.push(x.subarray(k, k + 128)));
  frames.push(...p.flush());
  out.pipeline = {sizes: frames.map((f) => f.length), pcm: b64(join(frames, Int16Array))};
  return out;
}
"""


def _serve_golden(page: Page, app_url: str) -> None:
    def golden(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        path = DATA_DIR / name
        if path.parent != DATA_DIR or not path.is_file():
            route.fulfill(status=404)
        else:
            route.fulfill(body=path.read_bytes(), content_type="application/octet-stream")

    page.route(app_url + TEST_PAGE, lambda route: route.fulfill(body="<!doctype html><title>dsp</title>",
                                                                 content_type="text/html"))
    page.route(app_url + GOLDEN_PREFIX + "*", golden)


def _i16(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<i2").astype(np.int16)


def test_golden_pcm_in_browser(pw: Playwright, browser_name: str, app_url: str) -> None:
    cases = resample_cases()
    converts = convert_cases()
    pipeline_case = next(c for c in cases if c.signal == "speech" and c.in_rate == 48000 and c.out_rate == 16000)
    with launch(pw, browser_name) as browser:
        page = new_page(browser, browser_name)
        _serve_golden(page, app_url)
        page.goto(app_url + TEST_PAGE)
        result = page.evaluate(RUN_GOLDEN, {
            "cases": [c.__dict__ for c in cases],
            "converts": [c.__dict__ for c in converts],
            "pipelineCase": pipeline_case.__dict__,
        })
    assert ("Firefox" if browser_name == "firefox" else "Chrome") in result["agent"]

    for conv in converts:
        assert np.array_equal(_i16(result["convert"][conv.output]), read_s16(conv.output)), conv.output

    tolerance = load_manifest()["tolerance_lsb"]["javascript"]
    problems = []
    for c in cases:
        got = result["resample"][c.output]
        pcm = _i16(got["pcm"])
        want = read_s16(c.output)
        if len(pcm) != len(want):
            problems.append(f"{c.id}: {len(pcm)} samples, want {len(want)}")
            continue
        worst = int(np.max(np.abs(pcm.astype(np.int32) - want), initial=0))
        if worst > tolerance:
            problems.append(f"{c.id}: off by {worst} LSB")
        if got["once"] != got["chunked"]:
            problems.append(f"{c.id}: 128-sample chunks differ from one call")
    assert not problems, problems

    sizes = result["pipeline"]["sizes"]
    assert sizes[:-1] == [1600] * (len(sizes) - 1) and 0 < sizes[-1] <= 1600
    pipeline_pcm = _i16(result["pipeline"]["pcm"])
    want = read_s16(pipeline_case.output)
    assert len(pipeline_pcm) == len(want)
    assert int(np.max(np.abs(pipeline_pcm.astype(np.int32) - want))) <= tolerance

