"""Shared captions: a read-only link to a recording's live transcript (a room screen, a stream overlay, a phone).

The recording page already has every final and interim, whatever the engine (for Truebar and Wiro the browser talks
to the provider directly), so it publishes them here with the share's publish token; viewers receive them as
Server-Sent Events and resume with Last-Event-ID after a drop. Only finals carry an event id (the store's number),
so a viewer's Last-Event-ID is always its last final, and the catch-up sends each later final exactly once. A
viewer resuming further back than the log keeps (LOG_MAX finals) is told first with a `gap` event. A viewer page
that opens a new stream (EventSource gives up after a refusal) says where it was with `?after=`. Interims may be
coalesced (a slow viewer gets the latest one); finals never.

    POST   /api/captions                       create a share (the app's own page only)
    GET    /api/captions/{share_id}            its public status (viewers, expiry)
    POST   /api/captions/{share_id}/events     publish (Authorization: Bearer <publish token>)
    DELETE /api/captions/{share_id}            revoke (the same token)
    GET    /api/captions/{share_id}/stream     the viewers' event stream
    GET    /captions/{share_id}                the viewer page

The share id in the link is the viewers' capability (128 random bits); the publish token never leaves the page
that created the share, travels only in a header, and only its hash is stored. Log lines never show either (see
security.redact). Behind APP_PASSWORD, the viewers' routes are open, and the publish and revoke pass the password
gate on their bearer token alone (a share outlives the login that made it), so those two check it themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from server.errors import ApiError
from server.pending_ends import pending_ends, releasing
from server.sessions import client_key, guard_state_change, limit_client, read_body, state_of
from server.settings import Settings
from server.state import State, StateUnavailable
from server.state.captions import CaptionEvent, Share, ShareGone
from server.state.clients import WIDER_FACTOR
from server.state.ledger import admit_place, hold_place, ledger_scope, release_place
from server.wire import (
    CaptionGap,
    PublishBody,
    PublishResult,
    Revoked,
    ShareGrant,
    ShareStatus,
    caption_after,
    dump,
    seconds_left,
)

log = logging.getLogger(__name__)

SHARE_ID = re.compile(r"[A-Za-z0-9_-]{22}")
# New shares per client and minute (a page makes one per click on "Share captions").
SHARE_RATE_PER_MIN = 10
# 50 events of 2000 characters of up to 3 bytes each fit; anything larger is not from the page.
PUBLISH_BODY_MAX = 320 * 1024
# A viewer's place under the cap is a lease renewed while its stream is open, so a dead replica's viewers lapse.
VIEWER_LEASE_S = 60.0
# Keep-alive comments (proxies close idle streams) and the most a stalled client may hold a send.
PING_S = 15
SEND_TIMEOUT_S = 10.0
# The browser's reconnection delay after a drop (the SSE `retry` field), in ms.
RETRY_MS = 2000


# The ledger pool of the captions links a client holds open (its scope: `ledger_scope`, as a session pool's).
SHARES_POOL = "captions-owner"


def viewer_scope(share_id: str) -> str:
    return f"captions:{share_id}"


def owner_scope(client: str) -> str:
    """The ledger of the shares one client (`client_key`) holds open."""
    return ledger_scope(SHARES_POOL, client)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _share_id(request: Request) -> str:
    share_id = str(request.path_params["share_id"])
    if not SHARE_ID.fullmatch(share_id):
        raise ApiError(404, "share_gone", "No such captions link: it has expired, or never existed.")
    return share_id


async def _find(state: State, share_id: str) -> Share:
    share = await state.captions.get(share_id)
    if share is None:
        raise ApiError(404, "share_gone", "No such captions link: it has expired, or never existed.")
    if share.revoked:
        raise ApiError(410, "share_revoked", "The person sharing these captions stopped sharing them.")
    return share


def _gone(exc: ShareGone) -> ApiError:
    if exc.revoked:
        return ApiError(410, "share_revoked", "The person sharing these captions stopped sharing them.")
    return ApiError(404, "share_gone", "No such captions link: it has expired, or never existed.")


async def _authorised(request: Request) -> tuple[State, Share]:
    """The share, when the request carries its publish token."""
    state = state_of(request)
    share = await _find(state, _share_id(request))
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token_hash(token.strip()), share.token_hash):
        raise ApiError(403, "bad_publish_token", "This request does not carry the share's publish token.")
    return state, share


def _expires_in(state: State, expires_at: float) -> float:
    """Seconds left until `expires_at`, on the state's clock (which wrote it): what the page counts from, its own
    clock being perhaps minutes off the server's."""
    return seconds_left(expires_at, state.clock())


async def create_share(request: Request) -> Response:
    guard_state_change(request, require_json=True)
    settings = _settings(request)
    state = state_of(request)
    wait = await limit_client(request, "captions", SHARE_RATE_PER_MIN)
    if wait is not None:
        raise ApiError(429, "too_many_shares", "Too many captions links made: wait a minute.", retry_after=wait)
    await read_body(request, 1024)
    share_id, token = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    now = state.clock()
    deadline = now + settings.captions_max_s
    share = Share(share_id, token_hash(token), now, deadline, min(deadline, now + settings.captions_grace_s))
    # Open shares are capped per client (Settings.captions_max_shares_per_client); a share's place lives as long as
    # the share (its grace while paused, its deadline while live: `publish` renews it) and is freed when it is stopped.
    # An IPv6 client's /56 and /48 hold WIDER_FACTOR times a client's shares, all their /64s together.
    client = client_key(request)
    owner = owner_scope(client)
    cap = settings.captions_max_shares_per_client
    try:
        place = await admit_place(state.ledger, owner, share_id, cap, WIDER_FACTOR * cap, share.expires_at - now)
    except StateUnavailable:
        # A slow store may have run the admission after its timeout: the client, answered 503, must not find it
        # holding a place for the share's grace. Given back now, or once the store answers (PendingEnds).
        await pending_ends(request).undo(client, *releasing((owner, share_id)))
        raise
    if not place.admitted:
        raise ApiError(
            429,
            "too_many_shares",
            f"Captions are already shared from {cap} recordings here: stop sharing one first.",
            retry_after=place.retry_after,
        )
    try:
        await state.captions.create(share)
    except BaseException:
        await pending_ends(request).undo(client, *releasing((owner, share_id)))
        raise
    grant = ShareGrant(
        share_id,
        f"/captions/{share_id}",
        token,
        share.expires_at,
        _expires_in(state, share.expires_at),
        share.deadline,
        settings.captions_max_viewers,
    )
    return JSONResponse(dump(grant), headers={"Cache-Control": "no-store"})


async def share_status(request: Request) -> Response:
    state = state_of(request)
    share = await state.captions.get(_share_id(request))
    if share is None:
        raise ApiError(404, "share_gone", "No such captions link: it has expired, or never existed.")
    viewers = 0 if share.revoked else await state.ledger.held(viewer_scope(share.share_id))
    status = ShareStatus(
        "revoked" if share.revoked else "active",
        share.live,
        share.expires_at,
        _expires_in(state, share.expires_at),
        viewers,
        _settings(request).captions_max_viewers,
    )
    return JSONResponse(dump(status), headers={"Cache-Control": "no-store"})


async def publish(request: Request) -> Response:
    guard_state_change(request, require_json=True)
    state, share = await _authorised(request)
    settings = _settings(request)
    wait = await state.rate_limits.hit("captions-publish", share.share_id, settings.captions_publish_rate_per_min)
    if wait is not None:
        raise ApiError(429, "publishing_too_fast", "Captions are published too often: slow down.", retry_after=wait)
    raw = await read_body(request, PUBLISH_BODY_MAX)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "The request body is not valid JSON.") from None
    body = PublishBody.parse(data)
    finals = [(e.seq or 0, e.text) for e in body.events if e.type == "final"]
    # Only an interim after the last final is still on screen; earlier ones are superseded by that final.
    partial = None
    for event in body.events:
        partial = event.text if event.type == "partial" else None
    try:
        if body.live is True and not share.live:
            share = await state.captions.set_live(share.share_id, True, settings.captions_grace_s)
        result = await state.captions.publish(share.share_id, finals, partial)
        expires_at = result.expires_at
        if body.live is False:
            share = await state.captions.set_live(share.share_id, False, settings.captions_grace_s)
            expires_at = share.expires_at
    except ShareGone as exc:
        raise _gone(exc) from None
    # The owner's place for the share lives as long as the share now does (longer while live, its grace once paused).
    # The finals are stored: a store that fails here leaves the place its earlier lifetime, not the request failed
    # (the page would publish them again).
    with contextlib.suppress(StateUnavailable):
        lifetime = max(1.0, expires_at - state.clock())
        await hold_place(state.ledger, await _owner_of(state, share.share_id, request), share.share_id, lifetime)
    viewers = await state.ledger.held(viewer_scope(share.share_id))
    live = share.live if body.live is None else body.live
    answer = PublishResult(result.seq, viewers, expires_at, _expires_in(state, expires_at), live)
    return JSONResponse(dump(answer), headers={"Cache-Control": "no-store"})


async def revoke(request: Request) -> Response:
    guard_state_change(request, require_json=False)
    try:
        state, share = await _authorised(request)
    except ApiError as exc:
        if exc.code == "share_revoked":
            # Stopped before: its place may still be held (the store failed when it was stopped).
            state = state_of(request)
            await _free_owner_place(state, _share_id(request), request)
            return JSONResponse(dump(Revoked(False)))
        raise
    revoked = await state.captions.revoke(share.share_id)
    await _free_owner_place(state, share.share_id, request)
    log.info("a captions share was revoked")
    return JSONResponse(dump(Revoked(revoked)))


async def _owner_of(state: State, share_id: str, request: Request) -> str:
    """The scope the share's place is held in: its owner's, wherever the owner is now (a page that moved from Wi-Fi
    to mobile data publishes and stops from another address); this client's if the place has lapsed."""
    return await state.ledger.scope_of(share_id) or owner_scope(client_key(request))


async def _free_owner_place(state: State, share_id: str, request: Request) -> None:
    """Give back a stopped share's place. The share is stopped whatever the store says: one that fails here leaves
    the place to lapse with the share (a second stop frees it)."""
    with contextlib.suppress(StateUnavailable):
        await release_place(state.ledger, await _owner_of(state, share_id, request), share_id)


def _sse(event: CaptionEvent, place: int | None = None) -> ServerSentEvent:
    """`event` on the wire; a state event given the viewer's `place` (its last final) carries it as its id."""
    if event.kind == "final":
        return ServerSentEvent(json.dumps({"text": event.text, "seq": event.seq}), event="final", id=str(event.seq))
    if event.kind == "partial":
        return ServerSentEvent(json.dumps({"text": event.text}), event="partial")
    if event.kind == "state":
        return ServerSentEvent(
            json.dumps({"live": event.reason == "live"}), event="state", id=None if place is None else str(place)
        )
    return ServerSentEvent(json.dumps({"reason": event.reason}), event="end")


def _gap(finals: list[CaptionEvent], last: int) -> ServerSentEvent | None:
    """A `gap` event when the catch-up `finals` for a viewer whose last final is `last` do not follow on from it:
    those between were dropped from the log (it keeps the last LOG_MAX), and without it the viewer would show the
    next ones as if nothing were missing."""
    if not finals or finals[0].seq <= last + 1:
        return None
    gap: CaptionGap = {"from": last + 1, "to": finals[0].seq - 1}
    return ServerSentEvent(json.dumps(gap), event="gap")


def _catch_up(
    finals: list[CaptionEvent], partial: CaptionEvent | None, last: int, *, gap: bool
) -> tuple[list[ServerSentEvent], int]:
    """The events that bring a viewer whose last final is `last` up to the log's `finals` and `partial` (a `gap`
    first where the log no longer has the first of them, if `gap`), and its last final after them."""
    missed = _gap(finals, last) if gap else None
    events = ([missed] if missed is not None else []) + [_sse(final) for final in finals]
    if partial is not None:
        events.append(_sse(partial))
    return events, finals[-1].seq if finals else last


def _resume_after(request: Request) -> int | None:
    """The viewer's last final: the later of its Last-Event-ID (EventSource's own reconnect) and `?after=` (the
    viewer page's new stream after a refusal, which carries no Last-Event-ID); None for a viewer new to the share
    (neither given). 0 is a viewer that was here before the first final. A malformed header reads as absent, as a
    browser's own never is; a malformed `after` is refused."""
    given: list[int] = []
    header = request.headers.get("last-event-id", "").strip()
    if header and (place := caption_after(header)) is not None:
        given.append(place)
    query = request.query_params.get("after", "").strip()
    if query:
        place = caption_after(query)
        if place is None:
            raise ApiError(400, "bad_after", "after must be the number of a final: a whole number from 0.")
        given.append(place)
    return max(given) if given else None


async def viewer_events(
    state: State, share_id: str, after: int | None, check_s: float, viewer: str
) -> AsyncIterator[ServerSentEvent]:
    """The viewer's events: every final after `after` (the log's, then live ones, never twice; all the log has for
    a viewer new to the share, None), preceded by a `gap` when the log no longer has the first of them (after a
    resume, or a resync), the current interim, and an `end` when the share is revoked or expires (then the stream
    closes). The share is looked at again at least every `check_s` seconds, and `viewer`'s lease renewed then."""
    captions = state.captions
    place = after or 0
    async with captions.subscribe(share_id) as box:
        # Subscribed before reading the log: a final published in between is in both, and dropped once by seq.
        finals, partial = await captions.backlog(share_id, place)
        yield ServerSentEvent(comment="captions", retry=RETRY_MS)
        current = await captions.get(share_id)
        if current is not None:
            # The viewer's place is its id from the first event on: one that came before any final (place 0)
            # reconnects with Last-Event-ID 0, not as a new viewer, so finals it missed are named as a gap.
            yield _sse(CaptionEvent("state", reason="live" if current.live else "paused"), place)
        # A viewer new to the share missed nothing: what was said before it came is not its gap.
        events, last = _catch_up(finals, partial, place, gap=after is not None)
        for sse in events:
            yield sse
        # The share is read again (and the lease renewed) every check_s of real time, or when it is due to expire
        # by the state's clock: not per event, which for 200 viewers would be thousands of Redis calls a second.
        share: Share | None = None
        next_check = 0.0
        while True:
            if share is None or time.monotonic() >= next_check or state.clock() >= share.expires_at:
                share = await captions.get(share_id)
                if share is None or share.revoked:
                    yield _sse(CaptionEvent("end", reason="revoked" if share else "expired"))
                    return
                await state.ledger.hold(viewer_scope(share_id), viewer, VIEWER_LEASE_S)
                next_check = time.monotonic() + check_s
            wait = max(0.05, min(next_check - time.monotonic(), share.expires_at - state.clock()))
            for event in await box.take(wait):
                if event.kind == "final":
                    if event.seq > last:
                        last = event.seq
                        yield _sse(event)
                elif event.kind == "partial":
                    yield _sse(event)
                elif event.kind == "resync":
                    # Live events were lost (this process's subscription dropped, or this viewer fell too far
                    # behind): the log has them. The inbox hands a resync over before any final, so `last` is still
                    # below the lost ones here.
                    events, last = _catch_up(*await captions.backlog(share_id, last), last, gap=True)
                    for sse in events:
                        yield sse
                elif event.kind == "state":
                    yield _sse(event)
                else:
                    yield _sse(event)
                    return


def _too_many_viewers(retry_after: float | None) -> ApiError:
    return ApiError(
        429,
        "too_many_viewers",
        "This captions link has as many viewers as it allows: try again shortly.",
        retry_after=retry_after,
    )


async def stream(request: Request) -> Response:
    state = state_of(request)
    settings = _settings(request)
    share = await _find(state, _share_id(request))
    scope = viewer_scope(share.share_id)
    # Read before a place is taken: a request that fails after taking one would hold it for the lease's length.
    after = _resume_after(request)
    if request.method == "HEAD":
        # Starlette answers HEAD on every GET route, and a HEAD never runs the stream whose end frees a place: each
        # would hold one for the lease's length (VIEWER_LEASE_S), 300 a minute enough to keep every viewer out. It
        # is answered as a GET would be (a monitor's check), taking no place.
        if await state.ledger.held(scope) >= settings.captions_max_viewers:
            raise _too_many_viewers(None)
        return Response(media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    # The lease is keyed per connection below; this first place is taken atomically against the cap.
    viewer = secrets.token_hex(8)
    admission = await state.ledger.admit(scope, viewer, settings.captions_max_viewers, VIEWER_LEASE_S)
    if not admission.admitted:
        raise _too_many_viewers(min(30.0, admission.retry_after))

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in viewer_events(state, share.share_id, after, settings.captions_check_s, viewer):
                yield event
        except StateUnavailable:
            # Redis blinked: end this stream quietly; the browser reconnects (RETRY_MS) and resumes by its
            # Last-Event-ID, so nothing is lost.
            log.warning("a captions stream ended: the shared state is unavailable")
        finally:
            # The client went away (or the share ended): free its place now rather than at the lease's end.
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(StateUnavailable):
                    await state.ledger.release(scope, viewer)

    return EventSourceResponse(
        events(),
        ping=PING_S,
        send_timeout=SEND_TIMEOUT_S,
        headers={"Cache-Control": "no-store"},
    )


async def viewer_page(request: Request) -> Response:
    share_id = str(request.path_params["share_id"])
    share = await state_of(request).captions.get(share_id) if SHARE_ID.fullmatch(share_id) else None
    status = "gone" if share is None else "revoked" if share.revoked else "active"
    code = {"gone": 404, "revoked": 410, "active": 200}[status]
    context = {"title": "Live captions", "share_id": share_id if status == "active" else "", "status": status}
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, "captions.html", context, status_code=code)
    response.headers["Cache-Control"] = "no-store"
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/api/captions", create_share, methods=["POST"]),
        Route("/api/captions/{share_id}", share_status, methods=["GET"]),
        Route("/api/captions/{share_id}", revoke, methods=["DELETE"]),
        Route("/api/captions/{share_id}/events", publish, methods=["POST"]),
        Route("/api/captions/{share_id}/stream", stream, methods=["GET"]),
        Route("/captions/{share_id}", viewer_page, methods=["GET"]),
    ]
