"""The provider contract: what every provider module offers the app, its policy included.

The generic modules (server/app.py, server/sessions.py) act on this contract alone and never name a provider: what a
session holds and for how long (`policy`), what the provider serves itself (`routes`: the engine's socket), whether
it can serve now (`readiness`), and the grant itself."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.routing import BaseRoute

from server.wire import Grant, ProviderOptions, ProviderStatus

__all__ = [
    "Grant",
    "Provider",
    "ProviderOptions",
    "ProviderStatus",
    "SessionPolicy",
    "SessionRequest",
    "VendorHosted",
]


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
    """What a provider reads of a validated POST /api/sessions body (SessionBody), plus what it needs to know about
    the caller."""

    # ws:// or wss:// origin of this app as the browser reached it (for endpoints the app serves itself).
    ws_origin: str
    # Truebar: the ASR tag the page asked for; None when it named none. Checked against the listing by the provider.
    tag: str | None = None
    client_id: str = "anonymous"
    # The app's name for the session (the ledger's key, the end endpoint's path); random, never an upstream id.
    session_id: str = field(default_factory=lambda: secrets.token_urlsafe(16))


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

    async def options(self) -> ProviderOptions:
        """Choices the page may offer (for Truebar, the ASR tags). Raises ApiError on upstream failure."""
        ...

    async def create_session(self, request: SessionRequest) -> Grant:
        """Mint a short-lived grant:
        {provider, protocol, ws_url, token, expires_at, expires_in, sample_rate, frame_samples, session_id, ...}.
        `expires_at` and `expires_in` say the same moment: the first on the provider's clock (Unix seconds), the
        second as the life left now, read on that same clock."""
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


class VendorHosted:
    """For a provider whose clients stream to the vendor's own socket: it serves no route here and has nothing of
    its own for /readyz to check (its upstream's failures show per request)."""

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    def readiness(self) -> Mapping[str, str]:
        return {}
