"""POST /api/sessions and GET /api/providers: the provider-neutral session grant."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import re
import secrets

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from server.errors import ApiError
from server.pending_ends import ENDS_PER_SESSION, PendingEnd, pending_ends, releasing
from server.providers.base import Provider, SessionRequest
from server.security import cross_site_reason
from server.settings import Settings
from server.state import (
    UNAVAILABLE_RETRY_S,
    WIDER_FACTOR,
    State,
    StateUnavailable,
    admit_place,
    client_limits,
    hold_place,
    ledger_key,
    ledger_scope,
    release_place,
)
from server.wire import Ended, Providers, SessionBody, dump

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
# How long a reservation made before minting may stand if the process dies before the grant is recorded.
PENDING_TTL_S = 120.0
# A session's id (the page's handle for it): 128 random bits, URL-safe base64 without padding.
SESSION_ID_BYTES = 16
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def _providers(request: Request) -> dict[str, Provider]:
    providers: dict[str, Provider] = request.app.state.providers
    return providers


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.to_json(), status_code=exc.status_code, headers=exc.headers)


async def api_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: every ApiError raised by a route becomes its JSON error."""
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def state_unavailable(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: the shared state store is down or slow. Nothing was minted; try again."""
    log.warning("shared state unavailable: %s", exc)
    return error_response(
        ApiError(
            503,
            "state_unavailable",
            "The server cannot reach its shared state right now: try again shortly.",
            retry_after=UNAVAILABLE_RETRY_S,
        )
    )


def ws_origin(request: Request) -> str:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.netloc}"


async def list_providers(request: Request) -> Response:
    providers = _providers(request)
    items = [p.status() for p in providers.values()]
    default = next((i.name for i in items if i.configured and not i.offline), None)
    if default is None:
        default = next((i.name for i in items if i.configured), None)
    return JSONResponse(dump(Providers(items, default)))


async def provider_options(request: Request) -> Response:
    provider = _providers(request).get(request.path_params["name"])
    if provider is None:
        raise ApiError(404, "unknown_provider", "No such provider.")
    return JSONResponse(dump(await provider.options()))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (never read whole first).

    A client that goes away part-way through its body (a closed tab, a lost network, anyone on /login) is an
    ordinary event, not the app's fault: Starlette's ClientDisconnect left uncaught is logged by uvicorn as an
    ERROR with a traceback. It ends here as a 400 that nobody is left to read (uvicorn drops what is sent to a
    closed connection)."""
    size, chunks = 0, []
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", "The request body is too large.")
            chunks.append(chunk)
    except ClientDisconnect:
        log.debug("%s %s: the client went away before its body was whole", request.method, request.url.path)
        raise ApiError(400, "client_disconnected", "The request body ended before it was whole.") from None
    return b"".join(chunks)


async def _session_body(request: Request) -> SessionBody:
    body = await read_body(request, MAX_BODY_BYTES)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "The request body is not valid JSON.") from None
    return SessionBody.parse(data)


def guard_state_change(request: Request, *, require_json: bool) -> None:
    """Only the app's own page may mint or end sessions."""
    reason = cross_site_reason(request.scope)
    if reason is not None:
        raise ApiError(403, "forbidden", f"Refused: {reason}. Sessions can be started only from this app's page.")
    if require_json:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "json_required", "Send the request as application/json.")


def state_of(request: Request) -> State:
    state: State = request.app.state.shared
    return state


async def limit_client(request: Request, name: str, per_minute: int) -> float | None:
    """Count one request of this client against the limit `name` of `per_minute` (and in its wider networks, each
    allowed more: server.state.clients); None when allowed, else seconds to wait."""
    return await state_of(request).rate_limits.hit_all(name, client_limits(client_key(request), per_minute))


async def create_session(request: Request) -> Response:
    guard_state_change(request, require_json=True)
    settings: Settings = request.app.state.settings
    state = state_of(request)
    client = client_key(request)
    wait = await limit_client(request, "sessions", settings.session_rate_per_min)
    if wait is not None:
        raise ApiError(429, "rate_limited", "Too many sessions started: wait a moment.", retry_after=wait)
    provider, body = await _chosen(request)
    # The store answers again: this client's ends it kept from completing go first (a place an end could not give
    # back would otherwise refuse this mint until the next retry).
    await pending_ends(request).retry(client)
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    # Only a session that holds something until ended counts (SessionPolicy): a grant that holds nothing here is
    # bounded by the rate limit alone.
    policy = provider.policy()
    place = _place(provider, client, session_id)
    if place is not None:
        # Reserved before the first await on the provider, so concurrent requests cannot all pass the check.
        # An IPv6 client's /56 and /48 hold WIDER_FACTOR times a client's places, all their /64s together.
        per_network = WIDER_FACTOR * policy.per_client
        try:
            admission = await admit_place(state.ledger, *place, policy.per_client, per_network, PENDING_TTL_S)
        except StateUnavailable:
            # A call that timed out may still have run (a slow store, not a down one): the place would stay taken
            # for PENDING_TTL_S by a client told 503. Given back now, or once the store answers (PendingEnds).
            await pending_ends(request).undo(client, *releasing(place))
            raise
        if not admission.admitted:
            whose = "this client" if admission.scope in ("", place[0]) else "this client's network"
            raise ApiError(
                429,
                "too_many_sessions",
                f"{admission.held} sessions are already open from {whose}: stop one first.",
                retry_after=admission.retry_after,
            )
    request_ = SessionRequest(ws_origin(request), tag=body.tag, client_id=client, session_id=session_id)
    try:
        grant = await provider.create_session(request_)
    except BaseException:
        if place is not None:
            await pending_ends(request).undo(client, *releasing(place))
        raise
    # Minted (for Wiro a billed Run), whether or not its client is still there to take it.
    request.app.state.metrics.grants.labels(provider.name).inc()
    if await request.is_disconnected():
        # The page gave up while the provider answered (Stop or Cancel while connecting abort the request, as do its
        # grant timeout and a closed tab). It never learns this session's id, so it cannot end it: a Wiro task
        # would run, billed, and the client's place stay taken until the grant's deadline (an hour for Wiro).
        log.info("a %s session was ended at once: its client left before it was made", provider.name)
        await _abandon(request, provider, session_id, place, client)
        raise ApiError(400, "client_disconnected", "The client left before its session was made; it was ended.")
    if place is not None:
        try:
            # The life left as the provider read it on its own clock (expires_at is on that clock, not the state's).
            await hold_place(state.ledger, *place, max(1.0, grant.expires_in))
        except StateUnavailable as exc:
            # The grant exists (a Wiro task may be running): hand it out. Its place lapses with the reservation.
            log.warning("could not record a session's expiry in the shared state (%s)", exc)
    return JSONResponse(dump(grant), headers={"Cache-Control": "no-store"})


async def _abandon(
    request: Request, provider: Provider, session_id: str, place: tuple[str, str] | None, client: str
) -> None:
    """End a session nobody will use, and give back its place, as its end call would."""
    try:
        await _end(request, provider, session_id, place, located=True, client=client)
    except Exception as exc:
        # A Wiro task that could not be killed now is the reaper's, at its deadline, as after any failed end (or
        # PendingEnds', when the store failed).
        log.warning("could not end a session its client abandoned (%s)", type(exc).__name__)


def _place(provider: Provider, client: str, session_id: str) -> tuple[str, str] | None:
    """The session's (scope, key) in the ledger, or None when its provider's sessions hold nothing here."""
    pool = provider.policy().pool
    return None if pool is None else (ledger_scope(pool, client), ledger_key(provider.name, session_id))


async def _chosen(request: Request) -> tuple[Provider, SessionBody]:
    body = await _session_body(request)
    provider = _providers(request).get(body.provider)
    if provider is None:
        known = ", ".join(_providers(request))
        raise ApiError(400, "unknown_provider", f"Unknown provider; choose one of: {known}.")
    status = provider.status()
    if not status.configured:
        missing = ", ".join(status.missing)
        raise ApiError(409, "not_configured", f"{status.label} is not configured: set {missing}.")
    return provider, body


async def end_session(request: Request) -> Response:
    """The page ended a session (also sent with sendBeacon on pagehide): release what it holds upstream. Answers
    whether this call ended something (false: already ended, never held, or not this client's).

    An end is never lost to the shared state failing: the provider's end is always tried (ending is always safe to
    attempt), and whatever the store kept from being done (the provider's own look-up, giving back the place) is
    kept in this process and tried again until the store answers (PendingEnds). When the provider's end itself
    could not be done, the client is answered 503 with Retry-After and may send it again (the page does)."""
    provider = _providers(request).get(request.path_params["name"])
    if provider is None:
        raise ApiError(404, "unknown_provider", "No such provider.")
    # sendBeacon cannot send JSON without a CORS preflight, so only the origin is checked here.
    guard_state_change(request, require_json=False)
    session_id = request.path_params["session_id"]
    if SESSION_ID.fullmatch(session_id) is None:
        # Never minted here: nothing to end, and nothing is stored for it (an id of any length, unchecked, was
        # kept as a spent grant for the grants' lifetime).
        return JSONResponse(dump(Ended(False)))
    client = client_key(request)
    place = _place(provider, client, session_id)
    holds: str | None = None
    # Whether the ledger said where the place is (else this end's own address is the guess).
    located = place is None
    if place is not None:
        # Its place is where its start took it, whatever address this end comes from (a phone moving from Wi-Fi
        # to mobile data; its pagehide beacon from the new one). With the store down, ending goes on as it can.
        try:
            holds = await state_of(request).ledger.scope_of(place[1])
            located = True
        except StateUnavailable:
            pass
        place = (holds or place[0], place[1])
    if holds is None and located:
        # Each end of an unused grant is kept as a spent grant for the grants' lifetime: bounded per client like
        # the mints, with room for every session a client may mint to be ended twice (the page's call and its
        # beacon). A session that still holds its place (a running Wiro task) is always ended: refused here, it
        # ran billed to its deadline, and anyone behind the same address could make that so with ends of made-up
        # ids. So is one the store could not tell about, and one the rate limit cannot be counted for: with the
        # store failing nothing of it is kept there, and what is kept here is bounded (PendingEnds).
        settings: Settings = request.app.state.settings
        try:
            wait = await limit_client(request, "ends", ENDS_PER_SESSION * settings.session_rate_per_min)
        except StateUnavailable:
            wait = None
        if wait is not None:
            raise ApiError(429, "rate_limited", "Too many sessions ended: wait a moment.", retry_after=wait)
    ended = await _end(request, provider, session_id, place, located=located, client=client)
    return JSONResponse(dump(Ended(ended)))


async def _end(
    request: Request,
    provider: Provider,
    session_id: str,
    place: tuple[str, str] | None,
    *,
    located: bool,
    client: str,
) -> bool:
    """The provider's end, then the place given back; True when either did something. What the store kept from
    being done is kept for PendingEnds; a provider's end that failed for it raises StateUnavailable (503) after
    that, so the client may send the end again."""
    state = state_of(request)
    pending = pending_ends(request)
    try:
        ended = await provider.end_session(session_id)
    except BaseException as exc:
        if isinstance(exc, StateUnavailable):
            pending.keep(PendingEnd(provider.name, session_id, client, place, located))
        # Whatever ending raised (the store failing part-way, after the task may already be dead), the client's
        # place is given back: otherwise it stays taken until the task's deadline, an hour by default.
        if place is not None:
            if isinstance(exc, StateUnavailable):
                with contextlib.suppress(StateUnavailable):
                    await release_place(state.ledger, *place)
            else:
                await pending.undo(client, *releasing(place))
        raise
    released = False
    if place is not None:
        try:
            released = await release_place(state.ledger, *place)
        except StateUnavailable as exc:
            # The session is ended: say so. Its place is given back once the store answers.
            log.warning("could not give back an ended session's place (%s)", exc)
            pending.keep(PendingEnd(provider.name, session_id, client, place, located, ended=True))
        else:
            if not released and not located:
                # Not where this end's address put it: where its start did, once the store can say.
                pending.keep(PendingEnd(provider.name, session_id, client, place, located, ended=True))
    return ended or released


def client_key(request: Request) -> str:
    """Whom a per-client limit (logins, mints, open sessions, captions links) counts against: the client's IPv4
    address, or its IPv6 /64. One IPv6 host is given a whole /64 and may use any address in it, so counting each
    address alone would let it step around every limit (a password guessed from 2^64 addresses). An IPv6 client
    counts in its /56 and /48 too (server.state.clients: logins, mints and ends through `limit_client`, open
    sessions through the ledger's `admit_place`)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return str(address)
