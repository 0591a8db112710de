"""What every provider module offers the app: a status, a session grant, and an end-of-session hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Grant = dict[str, Any]


class ProviderError(Exception):
    """A failure the page should see as a clear JSON error. `message` must never contain a secret
    or an upstream body verbatim."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    label: str
    configured: bool
    # Environment variables that still have to be set (empty when configured).
    missing: tuple[str, ...] = ()
    detail: str = ""
    offline: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "configured": self.configured,
            "missing": list(self.missing),
            "detail": self.detail,
            "offline": self.offline,
        }


@dataclass(frozen=True)
class SessionRequest:
    """A validated POST /api/sessions body plus what the provider needs to know about the caller."""

    options: Mapping[str, Any]
    # ws:// or wss:// origin of this app as the browser reached it (for endpoints the app serves itself).
    ws_origin: str
    client_id: str = "anonymous"
    extras: Mapping[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str

    def status(self) -> ProviderStatus: ...

    def connect_origins(self) -> list[str]:
        """Origins the browser must reach for this provider (the Content-Security-Policy's connect-src)."""
        ...

    async def options(self) -> dict[str, Any]:
        """Choices the page may offer (for Truebar, the ASR tags). Raises ProviderError on upstream failure."""
        ...

    async def create_session(self, request: SessionRequest) -> Grant:
        """Mint a short-lived grant:
        {provider, protocol, ws_url, token, expires_at, sample_rate, frame_samples, session_id, ...}."""
        ...

    async def end_session(self, session_id: str) -> None:
        """The page says the session ended (or was abandoned); release what it held upstream."""
        ...

    async def aclose(self) -> None:
        """App shutdown: release everything still held upstream."""
        ...
