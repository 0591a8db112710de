"""End-to-end latency on the page, in a real browser (not a test). Prints a Markdown report.

    .venv/bin/python -m bench.latency [--utterances 20] [--browser chromium] [--providers local truebar wiro]

The fake microphone plays a WAV made of the Festival clips in tests/data/speech (speech times known from
transcripts.json) separated by silence; the app runs against the embedded pocketsphinx engine directly ("local")
and through the Truebar and Wiro emulators. A MutationObserver on the transcript stamps when an interim line
appears or changes and when a final paragraph is added (performance.now(), wall time as the user sees it); the WAV
starts when getUserMedia resolves. Per utterance:

- speech start -> first interim: the first interim after the utterance's speech starts (before the next one's);
- end of speech -> final: the first final after the utterance's speech ends (before the next one's speech ends).

The page's own readout (LatencyTracker, on the audio clock, speech detected by level) is reported beside it.
About 2 minutes per provider at 20 utterances (real time).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import sync_playwright

from server.engine.config import EngineConfig
from server.engine.loader import load_engine
from testkit import audio
from testkit.browsers import launch, new_page
from testkit.stack import stack

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
RATE = 16_000
GAP_MS = 2500

STAMP_SCRIPT = """
(() => {
  window.__events = [];
  const md = navigator.mediaDevices;
  if (md) {
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => { const s = await gum(c); window.__t0 = performance.now(); return s; };
  }
  document.addEventListener('DOMContentLoaded', () => {
    const root = document.getElementById('transcript');
    new MutationObserver((records) => {
      const t = performance.now();
      for (const r of records) {
        const el = r.type === 'characterData' ? r.target.parentElement : r.target;
        if (r.type === 'childList') {
          for (const n of r.addedNodes) {
            if (n.classList && n.classList.contains('final')) window.__events.push([t, 'final']);
            if (n.classList && n.classList.contains('interim')) window.__events.push([t, 'interim']);
          }
          if (el && el.classList && el.classList.contains('interim')) window.__events.push([t, 'interim']);
        }
      }
    }).observe(root, { childList: true, subtree: true, characterData: true });
  });
})();
"""


def build_wav(n: int, path: Path) -> tuple[list[tuple[int, int]], int]:
    """Concatenate the 16 kHz clips (cycling) until n utterances; return their (start, end) ms and total ms."""
    transcripts = json.loads((SPEECH / "transcripts.json").read_text())
    clips = sorted(k for k in transcripts if k.endswith("-16k.wav"))
    parts: list[np.ndarray] = []
    times: list[tuple[int, int]] = []
    at_ms = 0
    k = 0
    while len(times) < n:
        name = clips[k % len(clips)]
        k += 1
        pcm, rate = audio.read_wav_pcm16(SPEECH / name)
        assert rate == RATE
        for u in transcripts[name]["utterances"]:
            times.append((at_ms + u["start_ms"], at_ms + u["end_ms"]))
        gap = np.zeros(RATE * GAP_MS // 1000, dtype=np.int16)
        parts += [pcm.astype(np.int16), gap]
        at_ms += len(pcm) * 1000 // RATE + GAP_MS
    data = np.concatenate(parts)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.astype("<i2").tobytes())
    return times[:n], at_ms


def per_utterance(events: list[tuple[float, str]], t0: float, times: list[tuple[int, int]]) -> dict[str, list[float]]:
    first: list[float] = []
    final: list[float] = []
    for i, (start, end) in enumerate(times):
        s, e = t0 + start, t0 + end
        next_s = t0 + times[i + 1][0] if i + 1 < len(times) else float("inf")
        next_e = t0 + times[i + 1][1] if i + 1 < len(times) else float("inf")
        interim = next((t for t, kind in events if kind == "interim" and s <= t < next_s), None)
        done = next((t for t, kind in events if kind == "final" and e <= t < next_e), None)
        if interim is not None:
            first.append(interim - s)
        if done is not None:
            final.append(done - e)
    return {"first": first, "final": final}


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, int(np.ceil(p / 100 * len(ordered)))) - 1]


def fmt(values: list[float]) -> str:
    if not values:
        return "- (n=0)"
    return f"{pct(values, 50):.0f} / {pct(values, 95):.0f} ms (n={len(values)})"


def run(browser_name: str, providers: list[str], n: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "utterances.wav"
        times, total_ms = build_wav(n, wav)
        with stack(load_engine(EngineConfig())) as st, sync_playwright() as pw:
            for provider in providers:
                with launch(pw, browser_name, wav, wav_in_page=True) as browser:
                    page = new_page(browser, browser_name, wav, wav_in_page=True)
                    page.add_init_script(STAMP_SCRIPT)
                    page.goto(st.url + "/")
                    page.wait_for_selector("#app[data-ready=true]")
                    page.select_option("#provider", provider)
                    page.click("#start")
                    page.wait_for_function("() => window.__fakeMicEnded === true", timeout=total_ms + 60_000)
                    time.sleep(3)  # the last final (Wiro: after its 1.5 s pause rule)
                    page.click("#stop")
                    page.wait_for_selector("#state[data-state=idle]", timeout=30_000)
                    t0 = page.evaluate("() => window.__t0")
                    events = [(float(t), str(k)) for t, k in page.evaluate("() => window.__events")]
                    readout = {
                        key: page.get_attribute(f"#latency-{key}", "data-p50") for key in ("first", "final")
                    } | {
                        f"{key}95": page.get_attribute(f"#latency-{key}", "data-p95") for key in ("first", "final")
                    }
                    finals = page.locator("#transcript .final").count()
                measured = per_utterance(events, t0, times)
                rows.append({"provider": provider, "finals": finals, **measured, "readout": readout})
                print(f"{provider}: {fmt(measured['first'])}, {fmt(measured['final'])}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--browser", default="chromium", choices=["chromium", "firefox"])
    parser.add_argument("--providers", nargs="+", default=["local", "truebar", "wiro"])
    args = parser.parse_args()
    rows = run(args.browser, args.providers, args.utterances)
    print(f"Browser: {args.browser}; {args.utterances} utterances; gap {GAP_MS} ms; {platform.platform()}; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| provider | speech start → first interim, p50 / p95 | end of speech → final, p50 / p95 "
          "| finals | page readout (audio clock) first interim p50 / p95 | page readout final p50 / p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ro = {k: v or "-" for k, v in r["readout"].items()}
        print(
            f"| {r['provider']} | {fmt(r['first'])} | {fmt(r['final'])} | {r['finals']} "
            f"| {ro['first']} / {ro['first95']} ms | {ro['final']} / {ro['final95']} ms |"
        )
    if any(r["final"] for r in rows):
        worst = max(statistics.median(r["final"]) for r in rows if r["final"])
        print(f"\nWorst median end of speech → final: {worst:.0f} ms.")


if __name__ == "__main__":
    main()
