"""The embedded offline engine (pocketsphinx), spoken to over the Truebar protocol on the app's own socket. Stub."""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocket

from server.emulators.recognizers import Recognizer
from server.providers.base import Grant, ProviderError, ProviderStatus, SessionRequest
from server.settings import Settings


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings, *, recognizer: Recognizer | None = None) -> None:
        self.settings = settings
        self.recognizer = recognizer

    def status(self) -> ProviderStatus:
        return ProviderStatus(
            self.name,
            "Offline engine (pocketsphinx, on this machine)",
            configured=self.settings.local.enabled,
            missing=() if self.settings.local.enabled else ("LOCAL_ENGINE=1",),
            offline=True,
        )

    def connect_origins(self) -> list[str]:
        return []

    async def options(self) -> dict[str, Any]:
        return {}

    async def create_session(self, request: SessionRequest) -> Grant:
        raise ProviderError(501, "not_implemented", "The offline engine is not available yet.")

    async def serve_stream(self, websocket: WebSocket) -> None:
        await websocket.close(code=1011)

    async def end_session(self, session_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
