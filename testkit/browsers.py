"""Launch Debian's Chromium and Firefox ESR through Playwright with a fake microphone playing a WAV file (WebKit:
see webkit.py, which reuses the WAV microphone hook).

Chromium plays the WAV itself (--use-file-for-fake-audio-capture). Firefox's fake device is a 1 kHz tone, so there
an init script replaces getUserMedia with a stream that plays the WAV through a MediaStreamAudioDestinationNode.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = "/usr/lib/chromium/chromium"
FIREFOX = "/usr/bin/firefox-esr"
FAKE_WAV_URL = "/__fake_mic.wav"

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

FIREFOX_PREFS: dict[str, str | int | bool] = {
    "media.navigator.permission.disabled": True,
    "media.navigator.streams.fake": True,
    # Without a mock cubeb context the AudioContext never starts on a machine with no sound card.
    "media.cubeb.force_mock_context": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "network.proxy.allow_hijacking_localhost": False,
}

# Replaces getUserMedia with a stream playing a WAV through a MediaStreamAudioDestinationNode. A function of the one
# thing engines differ in, how the page gets the WAV's bytes: `loadWav` returns a Promise of an ArrayBuffer.
# The WAV starts when getUserMedia resolves, as a real microphone would; window.__fakeMicEnded tells when it ends.
WAV_MIC_HOOK = """
(loadWav) => {
  const md = navigator.mediaDevices;
  if (!md) return;
  md.getUserMedia = async (constraints) => {
    if (!constraints || !constraints.audio) throw new DOMException('video is not faked', 'NotFoundError');
    const ctx = new AudioContext();
    const buffer = await ctx.decodeAudioData(await loadWav());
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    const dest = ctx.createMediaStreamDestination();
    src.connect(dest);
    window.__fakeMicEnded = false;
    src.onended = () => { window.__fakeMicEnded = true; };
    await ctx.resume();
    src.start();
    return dest.stream;
  };
}
"""

# The init script for Firefox (or Chromium when asked): the WAV comes from FAKE_WAV_URL, which page.route serves.
WAV_MIC_SCRIPT = f"({WAV_MIC_HOOK})(async () => (await fetch('{FAKE_WAV_URL}')).arrayBuffer());"


@contextlib.contextmanager
def launch(
    pw: Playwright,
    name: str,
    wav: Path | None = None,
    *,
    wav_in_page: bool = False,
    extra_prefs: Mapping[str, str | int | bool] | None = None,
) -> Iterator[Browser | BrowserContext]:
    """A browser with nothing open: a fresh Chromium profile (a persistent context; its fake microphone is a launch
    flag), or the driver's Firefox with these preferences, whose contexts close on exit. With `wav`, Chromium's fake
    microphone plays it once (no loop). `extra_prefs` adds Firefox preferences (Firefox over BiDi ignores emulated
    media, so a dark scheme is a preference there)."""
    if name == "chromium":
        flags = list(CHROMIUM_FLAGS)
        if wav is not None and not wav_in_page:
            if not wav.is_file():
                raise FileNotFoundError(wav)  # Chromium would silently capture zeros
            flags.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        with tempfile.TemporaryDirectory() as profile:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=flags, headless=True)
            try:
                yield ctx
            finally:
                ctx.close()
    elif name == "firefox":
        prefs: dict[str, str | float | bool] = {**FIREFOX_PREFS, **(extra_prefs or {})}
        browser = _firefox(pw, prefs)
        before = set(browser.contexts)
        try:
            yield browser
        except BaseException:
            # A failed test may leave the browser hung or half-way through something: the next caller gets a new one.
            _FIREFOXES.pop(_prefs_key(prefs), None)
            with contextlib.suppress(Exception):
                browser.close()
            raise
        # What this caller opened goes; the browser stays for the next caller with the same preferences.
        for context in set(browser.contexts) - before:
            context.close()
    else:
        raise ValueError(name)


# Firefox ESR takes 4-6 s to start here (Chromium 1 s), and some 50 tests each wanted a fresh one: one browser per
# Playwright driver and set of preferences serves them all, each test in contexts of its own (a context has its own
# cookies, storage and permissions; the fake microphone is a page's init script), closed when it is done.
_FIREFOXES: dict[str, tuple[Playwright, Browser]] = {}


def _prefs_key(prefs: dict[str, str | float | bool]) -> str:
    return repr(sorted(prefs.items()))


def _firefox(pw: Playwright, prefs: dict[str, str | float | bool]) -> Browser:
    key = _prefs_key(prefs)
    kept = _FIREFOXES.get(key)
    if kept is not None and kept[0] is pw and kept[1].is_connected():
        return kept[1]
    # None kept for this driver (a browser of a stopped driver went with it), or it crashed.
    browser = pw.firefox.launch(channel="moz-firefox", executable_path=FIREFOX, headless=True, firefox_user_prefs=prefs)
    _FIREFOXES[key] = (pw, browser)
    return browser


def new_page(
    browser: Browser | BrowserContext,
    name: str,
    wav: Path | None = None,
    *,
    wav_in_page: bool = False,
) -> Page:
    """A page whose microphone plays `wav` (Firefox always through the init script)."""
    page = browser.new_page()
    if wav is not None and (name == "firefox" or wav_in_page):
        body = wav.read_bytes()
        page.route("**" + FAKE_WAV_URL, lambda route: route.fulfill(body=body, content_type="audio/wav"))
        page.add_init_script(WAV_MIC_SCRIPT)
    return page
