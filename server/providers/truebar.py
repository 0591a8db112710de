"""Truebar, the server-side half: the account's username and password stay here; the browser gets an access token.

Tokens come from Keycloak's password grant, are cached, and are refreshed with the refresh token shortly before
they expire; a failed refresh signs in again. Concurrent callers share one upstream request. The cache is per
process even with shared state (APP_REDIS_URL): one sign-in per process per token lifetime costs nothing worth
saving, and a shared cache would put a live bearer token and its refresh token in Redis. The browser opens
the stream itself with `?access_token=` (browsers cannot set headers on a WebSocket).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.errors import ApiError
from server.providers.base import Grant, ProviderStatus, SessionPolicy, SessionRequest, VendorHosted
from server.settings import TruebarSettings
from server.upstream import upstream_call
from server.wire import TagOptions, seconds_left

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 1_600  # 100 ms at 16 kHz, within the 100-256 ms the vendor's examples send
# Community clients refresh 60 s early; tokens shorter than two minutes refresh at half their lifetime.
REFRESH_MARGIN_S = 60.0
STAGES_TTL_S = 60.0
# A tag is FRAMEWORK:language:domain:version, each part a name or `*`.
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*]+(:[A-Za-z0-9_.\-*]+){3}$")
DEFAULT_EXPIRES_IN_S = 60.0
# A sign-in service's Retry-After passed on no longer than this (s): a header of 400 digits is a float of inf.
RETRY_AFTER_MAX_S = 3600.0


@dataclass(frozen=True)
class _Token:
    access: str
    refresh: str
    expires_at: float  # unix seconds
    refresh_expires_at: float
    lifetime: float


def online_asr_tags(stages: object) -> list[str]:
    """ASR tags that can stream, from GET /api/pipelines/stages. Reads `configOptions` or `config`, and features
    at option or stage level; ignores entries it cannot read."""
    if not isinstance(stages, list):
        raise ValueError("expected a list of stages")
    tags: list[str] = []
    for stage in stages:
        if not isinstance(stage, dict) or stage.get("task", "ASR") != "ASR":
            continue
        options = stage.get("configOptions")
        if not isinstance(options, list):
            options = stage.get("config")
        if not isinstance(options, list):
            continue
        stage_features = _features(stage.get("features"))
        for option in options:
            if not isinstance(option, dict):
                continue
            tag = option.get("tag")
            features = stage_features | _features(option.get("features"))
            if isinstance(tag, str) and tag and "onlineAsr" in features and tag not in tags:
                tags.append(tag)
    return tags


def _features(raw: object) -> set[str]:
    return {f for f in raw if isinstance(f, str)} if isinstance(raw, list) else set()


def _seconds(raw: object, default: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return default
    try:
        seconds = float(raw)
    except OverflowError:  # an integer past any float (JSON numbers have no bound)
        return default
    return seconds if math.isfinite(seconds) and seconds > 0 else default


class TruebarProvider(VendorHosted):
    name = "truebar"

    def __init__(
        self, settings: TruebarSettings, http: httpx.AsyncClient, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self._token: _Token | None = None
        self._pending: asyncio.Task[_Token] | None = None
        self._tags: tuple[float, list[str]] | None = None

    def status(self) -> ProviderStatus:
        missing = self.settings.missing()
        if missing:
            detail = "Set " + " and ".join(missing) + " on the server."
        else:
            detail = f"Streams to {urlsplit(self.settings.stt_ws_url).netloc}."
        return ProviderStatus(self.name, "Truebar", configured=not missing, missing=missing, detail=detail)

    def policy(self) -> SessionPolicy:
        # A grant is an access token to Truebar's own socket: nothing is held here or billed until used.
        return SessionPolicy()

    def connect_origins(self) -> list[str]:
        parts = urlsplit(self.settings.stt_ws_url)
        if parts.scheme not in {"ws", "wss"} or not parts.netloc:
            return []
        return [f"{parts.scheme}://{parts.netloc}"]

    async def options(self) -> TagOptions:
        self._require_configured()
        tags = await self._online_tags()
        default = self.settings.asr_tag
        if tags and default not in tags:
            default = tags[0]
        return TagOptions(tags, default)

    async def create_session(self, request: SessionRequest) -> Grant:
        self._require_configured()
        tag = await self._choose_tag(request.tag)
        token = await self.access_token()
        return Grant(
            provider=self.name,
            protocol="truebar",
            ws_url=self.settings.stt_ws_url,
            token=token.access,
            expires_at=token.expires_at,
            # A cached token: the life it has left now, not the life it was issued with.
            expires_in=seconds_left(token.expires_at, self.clock()),
            sample_rate=SAMPLE_RATE,
            frame_samples=FRAME_SAMPLES,
            session_id=request.session_id,
            tag=tag,
        )

    async def start(self) -> None:
        return None

    async def end_session(self, session_id: str) -> bool:
        # Nothing is held upstream per session: the stream ends when the browser closes it.
        return False

    async def aclose(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)

    def _require_configured(self) -> None:
        missing = self.settings.missing()
        if missing:
            raise ApiError(409, "not_configured", f"Truebar is not configured: set {', '.join(missing)}.")

    # Tokens.

    async def access_token(self) -> _Token:
        """A cached access token with more than the refresh margin left; at most one upstream request at a time."""
        token = self._token
        if token is not None and not self._stale(token):
            return token
        if self._pending is None:
            task = asyncio.create_task(self._renew(token))
            self._pending = task
            task.add_done_callback(self._renewed)
        # Shielded: a caller that goes away must not cancel the request the others wait on.
        return await asyncio.shield(self._pending)

    def _renewed(self, task: asyncio.Task[_Token]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved here so a failure nobody awaited is not logged as lost

    def _stale(self, token: _Token) -> bool:
        margin = min(REFRESH_MARGIN_S, token.lifetime / 2)
        return self.clock() >= token.expires_at - margin

    async def _renew(self, old: _Token | None) -> _Token:
        if old is not None and old.refresh and old.refresh_expires_at > self.clock() + 1:
            form = {"grant_type": "refresh_token", "refresh_token": old.refresh, "client_id": self.settings.client_id}
            try:
                token = await self._request_token(form)
            except ApiError as exc:
                if exc.status_code == 504:
                    raise
                logger.info("Truebar token refresh failed (%s); signing in with the password", exc.code)
            else:
                self._token = token
                return token
        form = {
            "grant_type": "password",
            "username": self.settings.username,
            "password": self.settings.password,
            "client_id": self.settings.client_id,
        }
        token = await self._request_token(form)
        self._token = token
        return token

    async def _request_token(self, form: dict[str, str]) -> _Token:
        started = self.clock()
        with upstream_call("Truebar's sign-in service"):
            response = await self.http.post(self.settings.auth_url, data=form, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise self._token_error(response, form["grant_type"])
        data = _json_object(response, "sign-in service")
        access = data.get("access_token")
        # It becomes an Authorization header and a URL parameter: printable ASCII only (a JWT always is).
        if not isinstance(access, str) or not access or not (access.isascii() and access.isprintable()):
            raise ApiError(502, "upstream_bad_response", "Truebar's sign-in service sent no access token.")
        lifetime = _seconds(data.get("expires_in"), DEFAULT_EXPIRES_IN_S)
        refresh = data.get("refresh_token")
        refresh_lifetime = _seconds(data.get("refresh_expires_in"), lifetime)
        return _Token(
            access=access,
            refresh=refresh if isinstance(refresh, str) else "",
            # From when the request was sent: the upstream clock started no earlier.
            expires_at=started + lifetime,
            refresh_expires_at=started + refresh_lifetime,
            lifetime=lifetime,
        )

    def _token_error(self, response: httpx.Response, grant: str) -> ApiError:
        status = response.status_code
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_client":
            return ApiError(
                502, "upstream_auth", "Truebar rejected the configured client id (check TRUEBAR_CLIENT_ID)."
            )
        if grant == "password" and (error == "invalid_grant" or status == 401):
            return ApiError(
                502,
                "upstream_auth",
                "Truebar rejected the configured credentials (check TRUEBAR_USERNAME and TRUEBAR_PASSWORD).",
            )
        if status == 429:
            retry = response.headers.get("retry-after", "")
            return ApiError(
                503,
                "upstream_busy",
                "Truebar is limiting sign-ins; try again shortly.",
                retry_after=min(float(retry), RETRY_AFTER_MAX_S) if retry.isascii() and retry.isdigit() else 5.0,
            )
        if status >= 500:
            return ApiError(502, "upstream_error", f"Truebar's sign-in service failed (HTTP {status}).")
        return ApiError(502, "upstream_error", f"Truebar's sign-in service refused the request (HTTP {status}).")

    # Stages.

    async def _online_tags(self) -> list[str]:
        cached = self._tags
        if cached is not None and self.clock() - cached[0] < STAGES_TTL_S:
            return list(cached[1])
        response = await self._get_stages(await self.access_token())
        if response.status_code == 401:
            # The cached token was revoked upstream: sign in again once.
            self._token = None
            response = await self._get_stages(await self.access_token())
        if response.status_code != 200:
            raise ApiError(502, "upstream_error", f"Truebar's stage listing failed (HTTP {response.status_code}).")
        try:
            tags = online_asr_tags(response.json())
        except (ValueError, RecursionError):
            raise ApiError(502, "upstream_bad_response", "Truebar's stage listing sent an unreadable answer.") from None
        self._tags = (self.clock(), tags)
        return list(tags)

    async def _get_stages(self, token: _Token) -> httpx.Response:
        url = self.settings.api_base_url.rstrip("/") + "/api/pipelines/stages"
        with upstream_call("Truebar's stage listing", unreachable="Could not reach Truebar's API."):
            return await self.http.get(url, headers={"Authorization": f"Bearer {token.access}"})

    async def _choose_tag(self, requested: str | None) -> str:
        default = self.settings.asr_tag
        if requested is None or requested == default or not TAG_PATTERN.match(requested):
            return default
        try:
            tags = await self._online_tags()
        except ApiError as exc:
            # A broken listing should not block a session on the default tag; a failed sign-in should.
            if exc.code in {"upstream_error", "upstream_bad_response"}:
                return default
            raise
        return requested if requested in tags else default


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise ApiError(502, "upstream_bad_response", f"Truebar's {what} sent an unreadable answer.")
    return data
