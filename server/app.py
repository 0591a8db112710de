"""create_app(settings) -> Starlette. Routes are a list; the lifespan owns one httpx.AsyncClient."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket, WebSocketDisconnect

from server import sessions
from server.providers import build_providers
from server.providers.base import Provider
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"


async def index(request: Request) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "index.html", {"title": "Live transcription"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def local_stream(websocket: WebSocket) -> None:
    providers: dict[str, Provider] = websocket.app.state.providers
    local = providers["local"]
    await local.serve_stream(websocket)  # type: ignore[attr-defined]


class PcmSink:
    """Test-only: keeps every binary frame each connection sent, so browser tests can check the PCM exactly."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[bytes]] = {}
        self.texts: dict[str, list[str]] = {}

    async def handle(self, websocket: WebSocket) -> None:
        key = websocket.query_params.get("id", "default")
        frames = self.sessions.setdefault(key, [])
        texts = self.texts.setdefault(key, [])
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    frames.append(message["bytes"])
                elif message.get("text") is not None:
                    texts.append(message["text"])
                    if message["text"] == "bye":
                        await websocket.close(1000)
                        return
        except WebSocketDisconnect:
            return


def create_app(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """The app. `transport` is the seam tests use to put an emulator (ASGI or mock) behind every upstream call."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.upstream_timeout_s)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
            app.state.http = http
            app.state.providers = build_providers(settings, http)
            try:
                yield
            finally:
                for provider in app.state.providers.values():
                    await provider.aclose()

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/api/providers", sessions.list_providers),
        Route("/api/providers/{name}/options", sessions.provider_options),
        Route("/api/sessions", sessions.create_session, methods=["POST"]),
        Route("/api/sessions/{name}/{session_id}/end", sessions.end_session, methods=["POST"]),
        WebSocketRoute("/api/local/stream", local_stream),
    ]
    sink = PcmSink()
    if settings.test_endpoints:
        routes.append(WebSocketRoute("/api/test/sink", sink.handle))
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    app.state.sink = sink
    return app
