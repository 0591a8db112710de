"""Drive Debian's WebKitGTK (its MiniBrowser) through WebKitWebDriver and Selenium, under a private Xvfb.

WebKitGTK has no headless mode, so every browser gets its own X server (Xvfb picks a free display itself:
-displayfd). WebKitWebDriver listens on a free loopback port (Selenium's Service picks it). MiniBrowser needs
`--automation` to be driven at all; `--enable-mock-capture-devices=true` gives it a fake microphone (a tone), and
under automation getUserMedia is granted without a prompt.

What WebKit lacks here, and what stands in for it: no init scripts (hooks go in with execute_script after the page
has loaded), no console or log endpoint and no BiDi (the page's console, errors and CSP violations are recorded in
the page by install_page_hooks), no request routing (a WAV for the microphone hook travels as base64 in the script's
argument).
"""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.remote_connection import RemoteConnection
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.webkitgtk.options import Options
from selenium.webdriver.webkitgtk.service import Service

from testkit.browsers import WAV_MIC_HOOK

WEBDRIVER = "/usr/bin/WebKitWebDriver"
XVFB = "/usr/bin/Xvfb"
# libwebkit2gtk-4.1-0 installs it under the multiarch library directory (x86_64-linux-gnu, aarch64-linux-gnu, ...).
MINIBROWSER_GLOB = "/usr/lib/*/webkit2gtk-4.*/MiniBrowser"
APT_HINT = "apt-get install --no-install-recommends webkit2gtk-driver xvfb xauth libgl1-mesa-dri (scripts/setup.sh)"
COMMAND_TIMEOUT_S = 120  # s: longer than any script or wait a test gives the page
SCRIPT_TIMEOUT_S = 60


def minibrowser() -> str:
    found = sorted(glob.glob(MINIBROWSER_GLOB))
    if not found:
        raise FileNotFoundError(f"no WebKitGTK MiniBrowser at {MINIBROWSER_GLOB}: {APT_HINT}")
    return found[-1]


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A private X server on a display it picks itself; yields the DISPLAY value and stops the server on exit."""
    if not Path(XVFB).is_file():
        raise FileNotFoundError(f"no {XVFB}: {APT_HINT}")
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [XVFB, "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "1280x900x24"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write_fd)
    try:
        # Xvfb writes the display number and a newline once it accepts connections (EOF if it died first).
        with os.fdopen(read_fd, "rb") as pipe:
            number = pipe.readline().strip().decode()
        if not number.isdigit():
            raise RuntimeError(f"Xvfb did not start (exit status {proc.poll()})")
        yield f":{number}"
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def webkit(*, autoplay: bool = False, log_dir: Path | None = None, dark: bool = False) -> Iterator[WebDriver]:
    """A fresh MiniBrowser with the mock microphone, on its own Xvfb; everything stops on exit, also on failure.

    By default audio starts only after a user gesture, as in Safari: an AudioContext stays suspended until the page
    is clicked (a WebDriver click counts). `autoplay` lifts that, like Chromium's --autoplay-policy flag, for tests
    that call the capture code directly rather than through the page's Start button.
    The driver's log goes to `log_dir`/webkitwebdriver.log when given (for a failed test's post-mortem).
    `dark`: the page sees `prefers-color-scheme: dark` (WebKitGTK follows the GTK theme; its WebDriver cannot
    emulate media)."""
    browser = minibrowser()
    if not Path(WEBDRIVER).is_file():
        raise FileNotFoundError(f"no {WEBDRIVER}: {APT_HINT}")
    with xvfb() as display, tempfile.TemporaryDirectory(prefix="webkit-home-") as home:
        # A clean environment: the display, and a throwaway home so no cache, cookie or GTK setting of the user's
        # leaks in or is left behind. NO_AT_BRIDGE: there is no session bus for the accessibility bridge to find.
        env = {"DISPLAY": display, "HOME": home, "XDG_RUNTIME_DIR": home, "PATH": "/usr/bin:/bin", "NO_AT_BRIDGE": "1"}
        if dark:
            env["GTK_THEME"] = "Adwaita:dark"
        options = Options()
        options.binary_location = browser
        options.add_argument("--automation")
        # No toolbar: the viewport is the whole window, which a test can then size to a phone's (with its toolbar
        # GTK keeps MiniBrowser's window at least 447 px wide). Nothing else changes: the page is not put in
        # fullscreen (document.fullscreenElement stays null) and set_window_size sizes the window as before.
        options.add_argument("--full-screen")
        options.add_argument("--enable-mock-capture-devices=true")
        if autoplay:
            options.add_argument("--autoplay-policy=allow")
        log_path = (log_dir / "webkitwebdriver.log") if log_dir else Path(os.devnull)
        with open(log_path, "w") as log:
            # An explicit driver path keeps Selenium Manager (which would download drivers) out of it; the driver
            # listens on loopback only.
            service = Service(executable_path=WEBDRIVER, service_args=["--host=local"], env=env, log_output=log)
            service.start()
            try:
                # The connection is built here rather than by selenium's webkitgtk.WebDriver, whose own (4.51)
                # emits a DeprecationWarning for its way of passing the driver's URL.
                # A bound on each command: a browser that stops answering fails the test instead of holding the run
                # until CI's limit (Selenium's default is no timeout at all; one WebKit run hung so, mid-load).
                config = ClientConfig(remote_server_addr=service.service_url, timeout=COMMAND_TIMEOUT_S)
                connection = RemoteConnection(client_config=config)
                driver = WebDriver(command_executor=connection, options=options)
                try:
                    driver.set_script_timeout(SCRIPT_TIMEOUT_S)
                    yield driver
                finally:
                    driver.quit()
            finally:
                service.stop()


def run_async(driver: WebDriver, function: str, *args: Any) -> Any:
    """Call the async JavaScript `function` with `args` in the page and return what its promise resolves to; a
    rejection is raised here with the page's message."""
    wrapper = f"""
    const done = arguments[arguments.length - 1];
    Promise.resolve().then(() => ({function})(...Array.from(arguments).slice(0, -1)))
      .then((value) => done({{ok: true, value}}), (e) => done({{ok: false, error: String(e && e.stack || e)}}));
    """
    outcome = driver.execute_async_script(wrapper, *args)
    if not outcome["ok"]:
        raise AssertionError(f"page script failed: {outcome['error']}")
    return outcome["value"]


def wait_until(driver: WebDriver, condition: str, timeout_s: float = 20, *args: Any) -> None:
    """Wait until the JavaScript function body `condition` (called with `args`) returns true; on timeout, say what
    the page recorded (see install_page_hooks)."""
    try:
        WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
            lambda d: d.execute_script(condition, *args) is True
        )
    except TimeoutException:
        raise AssertionError(
            f"not true within {timeout_s} s: {condition} {args}; the page recorded: {page_problems(driver)}"
        ) from None


def wait_for(driver: WebDriver, css: str, timeout_s: float = 20) -> None:
    """Wait until an element matches `css` (the same selectors the Playwright tests wait for)."""
    wait_until(driver, "return document.querySelector(arguments[0]) !== null", timeout_s, css)


# Records what Playwright would have reported as console messages, page errors and CSP violations. Installed after
# load (WebKit's WebDriver has no init scripts), so it sees what the page does from then on.
PAGE_HOOKS = """
if (!window.__problems) {
  const problems = window.__problems = [];
  for (const level of ['error', 'warn']) {
    const original = console[level];
    console[level] = (...args) => {
      problems.push(`console.${level}: ${args.map(String).join(' ')}`);
      original(...args);
    };
  }
  window.addEventListener('error', (e) => problems.push(`error: ${e.message} (${e.filename}:${e.lineno})`));
  window.addEventListener('unhandledrejection', (e) => problems.push(`unhandledrejection: ${e.reason}`));
  document.addEventListener('securitypolicyviolation',
    (e) => problems.push(`csp: ${e.violatedDirective} blocked ${e.blockedURI}`));
}
"""


def install_page_hooks(driver: WebDriver) -> None:
    driver.execute_script(PAGE_HOOKS)


def page_problems(driver: WebDriver) -> list[str]:
    problems: list[str] = driver.execute_script("return window.__problems || []")
    return problems


# The WAV's bytes from the script's first argument (WebDriver cannot serve them on a fake URL as page.route does).
LOAD_INLINE_WAV = "async () => Uint8Array.from(atob(wav), (c) => c.charCodeAt(0)).buffer"

# A microphone for the bit-exactness check. WebKitGTK's bridge from one AudioContext's MediaStream into another
# context inserts a render quantum (128 frames) of silence whenever the two contexts' clocks slip: measured here,
# 0-4 such gaps in 4 s, depending on load, which the Firefox hook's own context cannot avoid. So getUserMedia
# returns a stream (its track stops like a microphone's) and a source node made for that stream (by
# createMediaStreamSource or the MediaStreamAudioSourceNode constructor) plays the decoded WAV in the capturing
# context itself. Everything after the source node is the page's own path.
WAV_SOURCE_HOOK = """
(loadWav) => {
  const md = navigator.mediaDevices;
  let fake = null;
  md.getUserMedia = async (constraints) => {
    if (!constraints || !constraints.audio) throw new DOMException('video is not faked', 'NotFoundError');
    const helper = new AudioContext();
    const buffer = await helper.decodeAudioData(await loadWav());
    const stream = helper.createMediaStreamDestination().stream;
    fake = { stream, buffer };
    return stream;
  };
  const play = (context) => {
    const src = context.createBufferSource();
    src.buffer = fake.buffer;
    window.__fakeMicEnded = false;
    src.onended = () => { window.__fakeMicEnded = true; };
    src.start();
    return src;
  };
  const createMediaStreamSource = AudioContext.prototype.createMediaStreamSource;
  AudioContext.prototype.createMediaStreamSource = function (stream) {
    return fake && stream === fake.stream ? play(this) : createMediaStreamSource.call(this, stream);
  };
  const NativeSourceNode = window.MediaStreamAudioSourceNode;
  window.MediaStreamAudioSourceNode = function (context, options) {
    if (fake && options && options.mediaStream === fake.stream) return play(context);
    return new NativeSourceNode(context, options);
  };
}
"""


def _install(driver: WebDriver, hook: str, wav: Path) -> None:
    if not wav.is_file():
        raise FileNotFoundError(wav)
    script = f"const wav = arguments[0]; ({hook})({LOAD_INLINE_WAV});"
    driver.execute_script(script, base64.b64encode(wav.read_bytes()).decode())


def install_wav_mic(driver: WebDriver, wav: Path) -> None:
    """Replace the page's getUserMedia with one that plays `wav` through a MediaStream (the Firefox path's hook):
    the page's whole path from its MediaStreamAudioSourceNode on, as with a microphone. WebKit's own mock device
    only plays a tone."""
    _install(driver, WAV_MIC_HOOK, wav)


def install_wav_source(driver: WebDriver, wav: Path) -> None:
    """A microphone playing `wav` sample-exactly: see WAV_SOURCE_HOOK."""
    _install(driver, WAV_SOURCE_HOOK, wav)
