"""Wiro: the server-side half (credentials stay here; the browser gets a short-lived grant). Stub."""

from __future__ import annotations

from typing import Any

import httpx

from server.providers.base import Grant, ProviderError, ProviderStatus, SessionRequest
from server.settings import WiroSettings


class WiroProvider:
    name = "wiro"

    def __init__(self, settings: WiroSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    def status(self) -> ProviderStatus:
        missing = self.settings.missing()
        return ProviderStatus(self.name, "Wiro", configured=not missing, missing=missing)

    def connect_origins(self) -> list[str]:
        return []

    async def options(self) -> dict[str, Any]:
        return {}

    async def create_session(self, request: SessionRequest) -> Grant:
        raise ProviderError(501, "not_implemented", "Wiro sessions are not available yet.")

    async def end_session(self, session_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
