"""The app wired to the emulators over real HTTP and WebSockets on loopback: one place that knows how to build
each provider's side, so contract, load and browser tests share it."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.applications import Starlette

from server.app import create_app
from server.emulators import truebar as truebar_emulator
from server.emulators import wiro as wiro_emulator
from server.engine.types import Recognizer
from server.settings import Settings, TruebarSettings, WiroSettings
from testkit.live import Served, running, serving

PROVIDERS = ("local", "truebar", "wiro")
# Known secrets: every test that builds the stack uses them, so leak checks can search for them. Drawn anew in each
# process, not written here: Hypothesis draws strings from the constants of the modules under test (this one
# included), and schemathesis once made a URL of a literal secret of this module, which the HTTP client logged (a
# leak the app never made). Each process passes its own to the processes it starts.
TRUEBAR_USER = "stack-user"
TRUEBAR_PASSWORD = "tb-pass-" + secrets.token_hex(6)
WIRO_KEY = "wiroKey" + secrets.token_hex(6)
WIRO_SECRET = "wiro-secret-" + secrets.token_hex(6)
APP_SECRET = "app-secret-key-" + secrets.token_hex(16)


@dataclass
class Stack:
    app: Starlette
    url: str
    truebar: Starlette | None = None
    wiro: Starlette | None = None
    urls: dict[str, str] = field(default_factory=dict)
    # The running servers ("app", "truebar", "wiro"): a test waits on them until every handler has ended.
    served: dict[str, Served] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@contextlib.contextmanager
def stack(
    recognizer: Recognizer,
    *,
    settings: Settings | None = None,
    truebar_options: truebar_emulator.TruebarEmulatorOptions | None = None,
    wiro_options: wiro_emulator.WiroEmulatorOptions | None = None,
    **app_kwargs: Any,
) -> Iterator[Stack]:
    """Both emulators (sharing `recognizer`) and the app configured against them, the app's offline engine
    also on `recognizer`. Everything stops on exit."""
    tb_opts = truebar_options or truebar_emulator.TruebarEmulatorOptions(
        username=TRUEBAR_USER, password=TRUEBAR_PASSWORD
    )
    wiro_opts = wiro_options or wiro_emulator.WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET)
    tb_app = truebar_emulator.create_emulator(tb_opts, recognizer)
    wiro_app = wiro_emulator.create_emulator(wiro_opts, recognizer)
    with serving(tb_app) as tb_served, serving(wiro_app) as wiro_served:
        tb_url, wiro_url = tb_served.url, wiro_served.url
        tb_ws = "ws" + tb_url.removeprefix("http")
        base = settings or Settings(secret_key=APP_SECRET, session_rate_per_min=10_000, max_sessions_per_client=1_000)
        configured = replace(
            base,
            truebar=TruebarSettings(
                username=tb_opts.username,
                password=tb_opts.password,
                auth_url=f"{tb_url}/realms/truebar/protocol/openid-connect/token",
                api_base_url=tb_url,
                stt_ws_url=f"{tb_ws}/api/pipelines/stream",
            ),
            wiro=WiroSettings(
                api_key=wiro_opts.api_key,
                api_secret=wiro_opts.api_secret,
                api_base_url=f"{wiro_url}/v1",
                socket_url="ws" + wiro_url.removeprefix("http") + "/v1",
            ),
        )
        app = create_app(configured, local_recognizer=recognizer, **app_kwargs)
        with serving(app) as served:
            yield Stack(
                app,
                served.url,
                tb_app,
                wiro_app,
                {"truebar": tb_url, "wiro": wiro_url},
                {"app": served, "truebar": tb_served, "wiro": wiro_served},
            )


SECRETS = (TRUEBAR_PASSWORD, WIRO_KEY, WIRO_SECRET, APP_SECRET)


@dataclass
class Emulators:
    truebar: Starlette
    wiro: Starlette
    urls: dict[str, str]
    # The app's `truebar` and `wiro` settings for them, as JSON-ready fields (for app processes).
    settings: dict[str, dict[str, Any]]


@contextlib.contextmanager
def emulators(
    recognizer: Recognizer,
    *,
    truebar_options: truebar_emulator.TruebarEmulatorOptions | None = None,
    wiro_options: wiro_emulator.WiroEmulatorOptions | None = None,
) -> Iterator[Emulators]:
    """Both emulators on loopback, for apps running elsewhere (other processes)."""
    tb_opts = truebar_options or truebar_emulator.TruebarEmulatorOptions(
        username=TRUEBAR_USER, password=TRUEBAR_PASSWORD
    )
    wiro_opts = wiro_options or wiro_emulator.WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET)
    tb_app = truebar_emulator.create_emulator(tb_opts, recognizer)
    wiro_app = wiro_emulator.create_emulator(wiro_opts, recognizer)
    with running(tb_app) as tb_url, running(wiro_app) as wiro_url:
        settings = {
            "truebar": {
                "username": tb_opts.username,
                "password": tb_opts.password,
                "auth_url": f"{tb_url}/realms/truebar/protocol/openid-connect/token",
                "api_base_url": tb_url,
                "stt_ws_url": "ws" + tb_url.removeprefix("http") + "/api/pipelines/stream",
            },
            "wiro": {
                "api_key": wiro_opts.api_key,
                "api_secret": wiro_opts.api_secret,
                "api_base_url": f"{wiro_url}/v1",
                "socket_url": "ws" + wiro_url.removeprefix("http") + "/v1",
            },
        }
        yield Emulators(tb_app, wiro_app, {"truebar": tb_url, "wiro": wiro_url}, settings)
