"""What saving transcripts costs in real browsers: static/transcripts/store.js in Debian's Chromium and Firefox ESR.

    .venv/bin/python -m bench.transcript_store [--finals 300] [--sessions 200] [--browser chromium firefox]

Per browser, in a fresh profile: the time to save one final (strict durability: flushed before the call resolves;
a 15-word final with word times, as the page writes it), to list the saved sessions, and to open a long session.
Prints Markdown. Not a test: the numbers depend on the machine, its disk and its load.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from server.app import create_app
from server.settings import Settings

CHROMIUM = "/usr/lib/chromium/chromium"
FIREFOX = "/usr/bin/firefox-esr"

MEASURE_JS = """
async ({ finals, sessions }) => {
  const { openTranscriptStore } = await import('/static/transcripts/store.js');
  const opened = await openTranscriptStore({ indexedDB, keyRange: IDBKeyRange, name: 'bench' });
  if (!opened.ok) throw new Error(opened.error.message);
  const store = opened.value;
  const words = Array.from({ length: 15 }, (_, i) => ({ text: `word${i}`, startMs: i * 300, endMs: i * 300 + 250 }));
  const final = { text: words.map((w) => w.text).join(' '), startMs: 0, endMs: 4500, words };
  const pct = (xs, q) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))];
  };

  const long = (await store.startSession({ title: 'long', engine: 'bench' })).value;
  const writes = [];
  for (let k = 0; k < finals; k++) {
    const t0 = performance.now();
    const r = await store.addFinal(long.id, final, { durationMs: k * 5000 });
    writes.push(performance.now() - t0);
    if (!r.ok) throw new Error(r.error.message);
  }
  for (let k = 1; k < sessions; k++) {
    const s = (await store.startSession({ title: `s${k}`, engine: 'bench' })).value;
    await store.addFinal(s.id, final);
  }
  const lists = [];
  for (let k = 0; k < 10; k++) {
    const t0 = performance.now();
    const r = await store.listSessions();
    lists.push(performance.now() - t0);
    if (!r.ok || r.value.length !== sessions) throw new Error('list');
  }
  const opens = [];
  for (let k = 0; k < 10; k++) {
    const t0 = performance.now();
    const r = await store.getSession(long.id);
    opens.push(performance.now() - t0);
    if (!r.ok || r.value.finals.length !== finals) throw new Error('open');
  }
  const session = (await store.listSessions()).value.find((s) => s.id === long.id);
  store.close();
  return {
    write_p50: pct(writes, 0.5), write_p95: pct(writes, 0.95), write_max: Math.max(...writes),
    list_p50: pct(lists, 0.5), open_p50: pct(opens, 0.5), bytes_per_final: session.bytes / finals,
  };
}
"""


@contextmanager
def serve() -> Iterator[str]:
    """The app (offline engine only) on a free loopback port, in a thread."""
    config = uvicorn.Config(create_app(Settings()), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)


@contextmanager
def browser(pw: Playwright, name: str) -> Iterator[Browser | BrowserContext]:
    if name == "chromium":
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
    else:
        b = pw.firefox.launch(channel="moz-firefox", executable_path=FIREFOX, headless=True)
    try:
        yield b
    finally:
        b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finals", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--browser", nargs="+", default=["chromium", "firefox"])
    args = parser.parse_args()
    print(f"{platform.machine()}, {args.finals} finals in one session, {args.sessions} sessions listed\n")
    print("| browser | save a final p50 / p95 / max | list sessions p50 | open the long session p50 | bytes/final |")
    print("|---|---|---|---|---|")
    with serve() as url, sync_playwright() as pw:
        for name in args.browser:
            with browser(pw, name) as b:
                page = b.new_page()
                page.goto(url + "/")
                r: dict[str, Any] = page.evaluate(MEASURE_JS, {"finals": args.finals, "sessions": args.sessions})
                print(
                    f"| {name} | {r['write_p50']:.1f} / {r['write_p95']:.1f} / {r['write_max']:.1f} ms "
                    f"| {r['list_p50']:.1f} ms | {r['open_p50']:.1f} ms | {r['bytes_per_final']:.0f} |"
                )


if __name__ == "__main__":
    main()
