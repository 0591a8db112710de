"""create_app(settings) -> Starlette. Routes are a list; the lifespan owns one httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.datastructures import URLPath
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Message, Receive, Scope, Send

from server import captions, sessions
from server.engine.config import EngineConfig
from server.engine.types import Recognizer
from server.errors import ApiError
from server.metrics import Metrics, metrics_endpoint
from server.openapi import openapi_route
from server.pending_ends import pending_ends_of
from server.providers import ProviderFactory, build_providers
from server.providers.base import Provider
from server.security import (
    COOKIE_NAME,
    HostGuardMiddleware,
    PasswordGateMiddleware,
    SecurityHeadersMiddleware,
    allowed_hosts,
    install_log_redaction,
    login_key,
    make_auth_cookie,
)
from server.settings import Settings
from server.state import UNAVAILABLE_RETRY_S, MemoryState, State, StateUnavailable, open_state
from server.upstream import DeadlineTransport
from server.wire import Health, Readiness, dump

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"


# Versioned static URLs (/static/v/<hash>/...) never change content, so browsers keep them for a year; the pages
# that name them are revalidated every time, so a deploy reaches the browser as one consistent set of modules.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def static_version(directory: Path) -> str:
    """A short hash of every file under `directory` (names and contents): it changes with any deploy that changes
    the browser code, and only then."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


class CachedStatic:
    """StaticFiles with a Cache-Control header: immutable under the current version's prefix, revalidated
    otherwise (the unversioned paths, and an old page asking for a version this server no longer has: it gets
    today's files, which must not be cached under the old name)."""

    def __init__(self, directory: Path, version: str | None) -> None:
        self.files = StaticFiles(directory=directory)
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        current = self.version is not None and scope.get("path_params", {}).get("version") == self.version
        policy = IMMUTABLE if current else REVALIDATE

        async def send_with_cache(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in {200, 304}:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", policy.encode())]}
            await send(message)

        await self.files(scope, receive, send_with_cache)


def page(request: Request, name: str, context: dict[str, object], status_code: int = 200) -> Response:
    """A template page: never cached, so it always names the current static version."""
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = REVALIDATE
    return response


async def index(request: Request) -> Response:
    return page(request, "index.html", {"title": "Live transcription"})


async def healthz(request: Request) -> Response:
    """The process is alive and its event loop answers (for a supervisor: restart it when this fails)."""
    return JSONResponse(dump(Health()))


async def readyz(request: Request) -> Response:
    """The process can serve sessions (for a load balancer: send it none while this says 503): the offline engine
    is loaded (or switched off), as each provider's readiness checks say, and the shared state store answers."""
    providers: dict[str, Provider] = request.app.state.providers
    checks = {name: value for p in providers.values() for name, value in p.readiness().items()}
    try:
        await sessions.state_of(request).ping()
        checks["state"] = "ok"
    except StateUnavailable as exc:
        checks["state"] = f"unavailable: {exc}"
    ready = all(value in ("ok", "off") for value in checks.values())
    headers = {"Cache-Control": "no-store"}
    if not ready:
        headers["Retry-After"] = str(round(UNAVAILABLE_RETRY_S))
    return JSONResponse(dump(Readiness(ready, checks)), status_code=200 if ready else 503, headers=headers)


LOGIN_TTL_S = 12 * 3600
LOGIN_RATE_PER_MIN = 10


async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if request.method == "GET":
        return page(request, "login.html", {"title": "Log in", "error": ""})
    wait = await sessions.limit_client(request, "login", LOGIN_RATE_PER_MIN)
    if wait is not None:
        return page(request, "login.html", {"title": "Log in", "error": "Too many attempts: wait a minute."}, 429)
    try:
        raw = await sessions.read_body(request, 4096)
    except ApiError as exc:
        if exc.status_code != 413:
            raise  # the client went away: its JSON error goes nowhere, as a page would
        return page(request, "login.html", {"title": "Log in", "error": "That request was too large."}, 413)
    form = parse_qs(raw.decode("utf-8", "replace"))
    given = (form.get("password") or [""])[0]
    if not settings.app_password or not hmac.compare_digest(given.encode(), settings.app_password.encode()):
        return page(request, "login.html", {"title": "Log in", "error": "Wrong password."}, 401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        make_auth_cookie(login_key(settings.secret_key, settings.app_password), LOGIN_TTL_S),
        max_age=LOGIN_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def sweep(state: MemoryState, every_s: float) -> None:
    """Drop what has expired from this process's memory every `every_s` seconds (Settings.state_sweep_s)."""
    while True:
        await asyncio.sleep(every_s)
        state.prune()


class ProviderRoutes(BaseRoute):
    """The endpoints the providers serve themselves (Provider.routes: the local engine's socket). The providers
    are built by the lifespan (they need its HTTP client and state), so their routes are filled in then; until
    then, and after shutdown, nothing matches here."""

    def __init__(self) -> None:
        self.router = Router()

    def fill(self, providers: Iterable[Provider]) -> None:
        self.router.routes = [route for provider in providers for route in provider.routes()]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        found = [route.matches(scope) for route in self.router.routes]
        full = [child for match, child in found if match is Match.FULL]
        if full:
            return Match.FULL, full[0]
        partial = [child for match, child in found if match is Match.PARTIAL]
        return (Match.PARTIAL, partial[0]) if partial else (Match.NONE, {})

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        return self.router.url_path_for(name, **path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The inner router matches again and runs the route (or answers 405 on a partial match).
        await self.router(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    local_recognizer: Recognizer | None = None,
    engine_loader: Callable[[EngineConfig], Recognizer] | None = None,
    state: State | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    extra_providers: Sequence[ProviderFactory] = (),
) -> Starlette:
    """The app. Seams for tests: `transport` carries every upstream HTTP call (an emulator, a mock);
    `local_recognizer` replaces the embedded engine (a scripted one for protocol and load tests); `engine_loader`
    replaces how the engine is loaded at start-up (server.engine.loader.load_engine); `state` replaces
    the shared state chosen from the settings (memory, or Redis with APP_REDIS_URL); `extra_routes` mounts test
    endpoints; `extra_providers` builds more providers (listed after the built-in ones) from the lifespan's
    HTTP client and state."""
    install_log_redaction()
    metrics = Metrics(settings.metrics_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.upstream_timeout_s)
        upstream = DeadlineTransport(transport or httpx.AsyncHTTPTransport(), settings.upstream_timeout_s)
        shared = state or open_state(
            settings.redis_url, timeout_s=min(settings.redis_timeout_s, settings.upstream_timeout_s)
        )
        async with httpx.AsyncClient(transport=upstream, timeout=timeout) as http:
            app.state.http = http
            app.state.shared = shared
            app.state.providers = build_providers(
                settings, http, shared, local_recognizer=local_recognizer, engine_loader=engine_loader, metrics=metrics
            )
            for factory in extra_providers:
                provider = factory(http, shared)
                app.state.providers[provider.name] = provider
            provider_routes.fill(app.state.providers.values())
            sweeper = None
            if isinstance(shared, MemoryState):
                sweeper = asyncio.create_task(sweep(shared, settings.state_sweep_s), name="state-sweeper")
            # Ends and undos the store kept from completing are retried by this lifespan, from its start for what a
            # previous one left (server.pending_ends.PendingEnds), until its end.
            pending_ends = pending_ends_of(app.state)
            try:
                pending_ends.start()
                for provider in app.state.providers.values():
                    await provider.start()
                async with metrics.watching_loop():
                    yield
            finally:
                # First, so that nothing failing below skips it: the worker has stopped serving, and the streams
                # its providers are about to close must not stay in the workers' sum of open ones.
                metrics.retire()
                # Before the providers and the state it uses are closed.
                await pending_ends.stop()
                # Each provider closes whatever another's shutdown raised: one failing must not skip the others
                # (the Wiro kills of a lone process's billed tasks, say).
                for provider in app.state.providers.values():
                    try:
                        await provider.aclose()
                    except Exception:
                        log.exception("closing the %s provider failed", provider.name)
                provider_routes.fill(())
                if sweeper is not None:
                    sweeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweeper
                if state is None:
                    await shared.aclose()

    provider_routes = ProviderRoutes()
    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        openapi_route(),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/api/providers", sessions.list_providers),
        Route("/api/providers/{name}/options", sessions.provider_options),
        Route("/api/sessions", sessions.create_session, methods=["POST"]),
        Route("/api/sessions/{name}/{session_id}/end", sessions.end_session, methods=["POST"]),
        *captions.routes(),
        provider_routes,
        *extra_routes,
    ]
    version = static_version(STATIC_DIR)
    routes.append(Mount("/static/v/{version}", CachedStatic(STATIC_DIR, version), name="static_v"))
    routes.append(Mount("/static", CachedStatic(STATIC_DIR, None), name="static"))

    def connect_origins() -> list[str]:
        providers: dict[str, Provider] = getattr(app.state, "providers", {})
        return [o for p in providers.values() if p.status().configured for o in p.connect_origins()]

    middleware = [
        Middleware(HostGuardMiddleware, allowed=allowed_hosts(settings)),
        Middleware(SecurityHeadersMiddleware, connect_origins=connect_origins),
    ]
    if settings.app_password:
        middleware.append(
            Middleware(PasswordGateMiddleware, secret=login_key(settings.secret_key, settings.app_password))
        )
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={
            ApiError: sessions.api_error,
            StateUnavailable: sessions.state_unavailable,
        },
    )
    app.state.settings = settings
    app.state.metrics = metrics
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["static_version"] = version
    app.state.templates = templates
    app.state.static_version = version
    return app
