"""POST /api/sessions and GET /api/providers: the provider-neutral session grant."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.providers.base import Grant, Provider, ProviderError, SessionRequest
from server.security import RateLimiter, cross_site_reason

MAX_BODY_BYTES = 16 * 1024


def _providers(request: Request) -> dict[str, Provider]:
    providers: dict[str, Provider] = request.app.state.providers
    return providers


def error_response(exc: ProviderError) -> JSONResponse:
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def ws_origin(request: Request) -> str:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.netloc}"


async def list_providers(request: Request) -> Response:
    providers = _providers(request)
    items = [p.status().to_json() for p in providers.values()]
    default = next((i["name"] for i in items if i["configured"] and not i["offline"]), None)
    if default is None:
        default = next((i["name"] for i in items if i["configured"]), None)
    return JSONResponse({"providers": items, "default": default})


async def provider_options(request: Request) -> Response:
    provider = _providers(request).get(request.path_params["name"])
    if provider is None:
        return error_response(ProviderError(404, "unknown_provider", "No such provider."))
    try:
        return JSONResponse(await provider.options())
    except ProviderError as exc:
        return error_response(exc)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (never read whole first)."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProviderError(413, "too_large", "The request body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_BODY_BYTES)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise ProviderError(400, "bad_json", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProviderError(400, "bad_json", "The request body must be a JSON object.")
    return data


@dataclass
class SessionLedger:
    """Grants each client holds: minted and neither ended nor expired. Caps how many one client has open."""

    limit: int
    clock: Callable[[], float] = time.time
    _open: dict[str, dict[str, float]] = field(default_factory=dict)

    def admit(self, client: str) -> str:
        """Reserve a place for a grant being minted (returns its key), or raise 429. Reserving before the first
        await keeps concurrent requests from all passing the check."""
        now = self.clock()
        held = {k: exp for k, exp in self._open.get(client, {}).items() if exp > now}
        self._open[client] = held
        if len(held) >= self.limit:
            raise ProviderError(
                429,
                "too_many_sessions",
                f"{len(held)} sessions are already open from this client: stop one first.",
                retry_after=max(1.0, min(held.values()) - now),
            )
        key = f"pending/{secrets.token_hex(8)}"
        held[key] = now + 120.0
        return key

    def add(self, client: str, key: str, expires_at: float) -> None:
        self._open.setdefault(client, {})[key] = expires_at

    def remove(self, key: str) -> None:
        for held in self._open.values():
            held.pop(key, None)


def guard_state_change(request: Request, *, require_json: bool) -> None:
    """Only the app's own page may mint or end sessions."""
    reason = cross_site_reason(request.scope)
    if reason is not None:
        raise ProviderError(
            403, "forbidden", f"Refused: {reason}. Sessions can be started only from this app's page."
        )
    if require_json:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ProviderError(415, "json_required", "Send the request as application/json.")


async def create_session(request: Request) -> Response:
    try:
        guard_state_change(request, require_json=True)
        limiter: RateLimiter = request.app.state.session_limiter
        wait = limiter.check(client_key(request))
        if wait is not None:
            raise ProviderError(
                429, "rate_limited", "Too many sessions started: wait a moment.", retry_after=wait
            )
        ledger: SessionLedger = request.app.state.ledger
        reservation = ledger.admit(client_key(request))
        try:
            grant = await _mint(request)
        finally:
            ledger.remove(reservation)
    except ProviderError as exc:
        return error_response(exc)
    ledger.add(
        client_key(request), f"{grant['provider']}/{grant.get('session_id')}", float(grant["expires_at"])
    )
    return JSONResponse(grant, headers={"Cache-Control": "no-store"})


async def _mint(request: Request) -> Grant:
    body = await _json_body(request)
    name = body.get("provider")
    provider = _providers(request).get(name) if isinstance(name, str) else None
    if provider is None:
        known = ", ".join(_providers(request))
        raise ProviderError(400, "unknown_provider", f"Unknown provider; choose one of: {known}.")
    status = provider.status()
    if not status.configured:
        missing = ", ".join(status.missing)
        raise ProviderError(409, "not_configured", f"{status.label} is not configured: set {missing}.")
    return await provider.create_session(
        SessionRequest(options=body, ws_origin=ws_origin(request), client_id=client_key(request))
    )


async def end_session(request: Request) -> Response:
    """The page ended a session (also sent with sendBeacon on pagehide): release what it holds upstream."""
    provider = _providers(request).get(request.path_params["name"])
    if provider is None:
        return error_response(ProviderError(404, "unknown_provider", "No such provider."))
    try:
        # sendBeacon cannot send JSON without a CORS preflight, so only the origin is checked here.
        guard_state_change(request, require_json=False)
        await provider.end_session(request.path_params["session_id"])
        ledger: SessionLedger = request.app.state.ledger
        ledger.remove(f"{provider.name}/{request.path_params['session_id']}")
    except ProviderError as exc:
        return error_response(exc)
    return JSONResponse({"ended": True})


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"
