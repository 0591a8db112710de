"""The provider contract: what every provider module offers the app, its policy included.

The generic modules (server/app.py, server/sessions.py) act on this contract alone and never name a provider: what a
session holds and for how long (`policy`), what the provider serves itself (`routes`: the engine's socket), whether
it can serve now (`readiness`), and the grant itself."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict

from starlette.routing import BaseRoute


class Grant(TypedDict):
    """What POST /api/sessions answers: everything a client needs to open the stream itself."""

    provider: str
    protocol: str  # the wire protocol the client speaks: "truebar" or "wiro"
    ws_url: str
    token: str
    expires_at: float  # Unix seconds
    sample_rate: int
    frame_samples: int
    # Names the session in POST /api/sessions/{provider}/{session_id}/end (never an upstream id).
    session_id: str
    tag: NotRequired[str]
    tags: NotRequired[list[str]]
    task_id: NotRequired[str]
    offline: NotRequired[bool]


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
class SessionPolicy:
    """What a granted session holds on this server, and for how long.

    A session that holds something takes a place in its client's ledger `pool` when it is granted, and keeps it
    until the page ends it or the grant expires (a provider that serves the stream itself, like the local engine,
    also holds a renewed lease while the socket is open). Each pool has its own cap: "cloud" guards the account's
    billed slots (a Wiro task runs upstream until killed), "local" the engine's decoders."""

    # None: a grant holds nothing here (a Truebar token); only the rate limit bounds its minting.
    pool: str | None = None
    # Places one client may hold at once in `pool`.
    per_client: int = 1


@dataclass(frozen=True)
class SessionRequest:
    """A validated POST /api/sessions body plus what the provider needs to know about the caller."""

    options: Mapping[str, Any]
    # ws:// or wss:// origin of this app as the browser reached it (for endpoints the app serves itself).
    ws_origin: str
    client_id: str = "anonymous"
    # The app's name for the session (the ledger's key, the end endpoint's path); random, never an upstream id.
    session_id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    extras: Mapping[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str

    def status(self) -> ProviderStatus: ...

    def policy(self) -> SessionPolicy:
        """What its sessions hold and how many one client may hold (asked at each grant: a capacity may follow the
        engine loaded since start-up)."""
        ...

    def routes(self) -> Sequence[BaseRoute]:
        """Endpoints the provider serves itself (the local engine's stream socket); mounted by the app."""
        ...

    def readiness(self) -> Mapping[str, str]:
        """What /readyz checks for this provider, by name: "ok", "off", or why it cannot serve yet."""
        ...

    def connect_origins(self) -> list[str]:
        """Origins the browser must reach for this provider (the Content-Security-Policy's connect-src)."""
        ...

    async def options(self) -> dict[str, Any]:
        """Choices the page may offer (for Truebar, the ASR tags). Raises ApiError on upstream failure."""
        ...

    async def create_session(self, request: SessionRequest) -> Grant:
        """Mint a short-lived grant:
        {provider, protocol, ws_url, token, expires_at, sample_rate, frame_samples, session_id, ...}."""
        ...

    async def start(self) -> None:
        """App startup: background work the provider needs (the Wiro reaper)."""
        ...

    async def end_session(self, session_id: str) -> bool:
        """The page says the session ended (or was abandoned); release what it held upstream. True when something
        was released by this call."""
        ...

    async def aclose(self) -> None:
        """App shutdown: release everything still held upstream."""
        ...
