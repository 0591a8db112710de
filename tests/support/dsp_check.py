"""The DSP golden check shared by every browser engine: the page runs RUN_GOLDEN (static/audio/pcm.js over the
golden inputs, outputs returned as base64) and check_golden compares its result with the golden files within the
tolerance the manifest gives JavaScript."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from tests.golden import DATA_DIR, ResampleCase, convert_cases, load_manifest, read_s16, resample_cases

GOLDEN_PREFIX = "/__golden/"

# An async function of {cases, converts, pipelineCase, inputs}. The golden inputs come from GOLDEN_PREFIX (which
# Playwright's page.route serves), or inline as base64 in `inputs` (WebDriver, which cannot serve a fake URL).
RUN_GOLDEN = """
async ({cases, converts, pipelineCase, inputs}) => {
  const pcm = await import('/static/audio/pcm.js');
  const input = async (name) => inputs
    ? Uint8Array.from(atob(inputs[name]), (c) => c.charCodeAt(0)).buffer
    : (await fetch('GOLDEN_PREFIX' + name)).arrayBuffer();
  const load = async (name) => new Float32Array(await input(name));
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
""".replace("GOLDEN_PREFIX", GOLDEN_PREFIX)


def _pipeline_case(cases: list[ResampleCase]) -> ResampleCase:
    return next(c for c in cases if c.signal == "speech" and c.in_rate == 48000 and c.out_rate == 16000)


def golden_args(*, inline: bool = False) -> dict[str, Any]:
    """RUN_GOLDEN's argument: every resample and convert case, and the pipeline case (speech, 48 -> 16 kHz)."""
    cases = resample_cases()
    converts = convert_cases()
    pipeline_case = _pipeline_case(cases)
    inputs = None
    if inline:
        names = {c.input for c in cases} | {c.input for c in converts}
        inputs = {name: base64.b64encode((DATA_DIR / name).read_bytes()).decode() for name in sorted(names)}
    return {
        "cases": [c.__dict__ for c in cases],
        "converts": [c.__dict__ for c in converts],
        "pipelineCase": pipeline_case.__dict__,
        "inputs": inputs,
    }


def _i16(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<i2").astype(np.int16)


def check_golden(result: dict[str, Any]) -> None:
    """Assert that RUN_GOLDEN's result matches the golden files."""
    cases = resample_cases()
    converts = convert_cases()
    pipeline_case = _pipeline_case(cases)
    # Every case the manifest lists came back from the page, and nothing else: a page that ran none passes no loop.
    assert sorted(result["convert"]) == sorted(c.output for c in converts)
    assert sorted(result["resample"]) == sorted(c.output for c in cases)
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

