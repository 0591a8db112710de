"""Wiro: the server-side half. The API key (and secret) stay here; the browser gets the task's socket token.

Each session is a billed Wiro task that holds one of the account's concurrency slots until it ends, so the
provider remembers every task it started and kills it (POST /Task/Kill) when the page says the session ended,
when the task outlives `task_deadline_s`, and at shutdown. Run is never retried: a retry could start a second
billed task.

Upstream failures become ProviderError with fixed messages (never a secret, never Wiro's body verbatim):
- code 0 auth errors, 98 and 99, an unknown model (1), other refusals, 5xx, unreadable answers: 502
- 96 (concurrency limit): 429 with Retry-After, the page may try again later
- 97 (insufficient balance): 402
- timeouts: 504; connection failures: 502
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.providers.base import Grant, ProviderError, ProviderStatus, SessionRequest
from server.settings import WiroSettings

log = logging.getLogger("wiro")

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 4_800
CONCURRENCY_RETRY_AFTER_S = 15.0
# Bounds the kills at shutdown, so a dead upstream cannot hold the app's exit.
ACLOSE_TIMEOUT_S = 5.0
# A kill that failed for a transport reason is tried again this much later, at most KILL_ATTEMPTS times.
KILL_RETRY_S = 30.0
KILL_ATTEMPTS = 3

_AUTH_MESSAGES = {
    "Project authorization is not founded.": "Wiro rejected the configured API key (WIRO_API_KEY).",
    "Project requires signature authentication. x-signature and x-nonce headers are required.": (
        "The Wiro project requires signature authentication: set WIRO_API_SECRET."
    ),
    "Project authorization is not valid.": "Wiro rejected the request signature: check WIRO_API_SECRET.",
}


@dataclass
class _Task:
    task_id: str
    token: str
    deadline: float
    kill_attempts: int = 0
    killing: bool = False


def _signature(api_key: str, api_secret: str, nonce: str) -> str:
    """Wiro's x-signature: lowercase hex HMAC-SHA256 with key = API key over secret + nonce (UTF-8)."""
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


class WiroProvider:
    name = "wiro"

    def __init__(
        self,
        settings: WiroSettings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = http
        self._clock = clock
        self._monotonic = monotonic
        self._last_nonce = 0
        self._tasks: dict[str, _Task] = {}
        # The page names its session by a random handle, never by Wiro's sequential task id: anyone who can reach
        # the app could otherwise end other people's tasks by counting.
        self._handles: dict[str, str] = {}
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # --- the Provider interface -------------------------------------------------------------------------------

    def status(self) -> ProviderStatus:
        missing = self.settings.missing()
        mode = "signature" if self.settings.api_secret else "API key only"
        detail = f"authentication: {mode}" if not missing else "set WIRO_API_KEY to use Wiro"
        return ProviderStatus(self.name, "Wiro", configured=not missing, missing=missing, detail=detail)

    def connect_origins(self) -> list[str]:
        parts = urlsplit(self.settings.socket_url)
        return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []

    async def options(self) -> dict[str, Any]:
        return {"transcription_delay": self.settings.transcription_delay}

    async def create_session(self, request: SessionRequest) -> Grant:
        await self._reap_expired()
        body = await self._post(
            f"/Run/{self.settings.model}", {"transcriptionDelay": self.settings.transcription_delay}
        )
        task_id = body.get("taskid")
        token = body.get("socketaccesstoken")
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        # The token goes into every audio frame before a `|`: only ASCII letters and digits are safe there.
        if not isinstance(token, str) or not (token.isascii() and token.isalnum()):
            raise ProviderError(502, "upstream_bad_response", "Wiro started a task but its answer was incomplete.")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(502, "upstream_bad_response", "Wiro started a task but its answer was incomplete.")
        self._track(task_id, token)
        handle = secrets.token_urlsafe(16)
        self._handles[handle] = task_id
        return {
            "provider": self.name,
            "protocol": "wiro",
            "ws_url": self.settings.socket_url,
            "token": token,
            "task_id": task_id,
            "session_id": handle,
            "sample_rate": SAMPLE_RATE,
            "frame_samples": FRAME_SAMPLES,
            "expires_at": self._clock() + self.settings.task_deadline_s,
        }

    async def end_session(self, session_id: str) -> None:
        """Kill the task (the page ended, or its pagehide beacon arrived). Unknown ids are ignored, so a page can
        only end tasks this server started."""
        task_id = self._handles.pop(session_id, None)
        task = self._tasks.get(task_id) if task_id is not None else None
        if task is not None:
            await self._kill(task)
        await self._reap_expired()

    async def aclose(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        tasks = list(self._tasks.values())
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(self._kill(t, final=True) for t in tasks), return_exceptions=True),
                    ACLOSE_TIMEOUT_S,
                )
        self._tasks.clear()
        self._handles.clear()

    # --- task tracking ------------------------------------------------------------------------------------------

    def tracked(self) -> list[str]:
        """Task ids still held (started here, not yet ended or killed)."""
        return list(self._tasks)

    def _track(self, task_id: str, token: str) -> None:
        self._tasks[task_id] = _Task(task_id, token, self._monotonic() + self.settings.task_deadline_s)
        self._changed.set()
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop(), name="wiro-task-reaper")

    async def _reap_loop(self) -> None:
        """Kills tasks past their deadline even when no page ever calls again."""
        while self._tasks and not self._closed:
            await self._reap_expired()
            if not self._tasks:
                return
            wait = max(0.0, min(t.deadline for t in self._tasks.values()) - self._monotonic())
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    async def _reap_expired(self) -> None:
        now = self._monotonic()
        expired = [t for t in self._tasks.values() if t.deadline <= now]
        if expired:
            await asyncio.gather(*(self._kill(t) for t in expired))

    async def _kill(self, task: _Task, *, final: bool = False) -> None:
        """POST /Task/Kill. An "already ended"/"no such task" answer (code 1) counts as done; a transport failure
        is retried later by the reaper, a bounded number of times."""
        if self._tasks.get(task.task_id) is not task or task.killing:
            return
        task.kill_attempts += 1
        task.killing = True
        try:
            await self._post("/Task/Kill", {"taskid": task.task_id, "socketaccesstoken": task.token})
        except ProviderError as exc:
            transient = exc.code in ("upstream_timeout", "upstream_unreachable", "upstream_error")
            if transient and not final and task.kill_attempts < KILL_ATTEMPTS:
                log.warning("wiro: killing task %s failed (%s); will retry", task.task_id, exc.code)
                task.deadline = self._monotonic() + KILL_RETRY_S
                self._changed.set()
                return
            if exc.code != "wiro_not_found":
                log.warning("wiro: could not kill task %s (%s)", task.task_id, exc.code)
        finally:
            task.killing = False
        self._tasks.pop(task.task_id, None)
        for handle in [h for h, t in self._handles.items() if t == task.task_id]:
            del self._handles[handle]
        self._changed.set()

    # --- HTTP ---------------------------------------------------------------------------------------------------

    def _next_nonce(self) -> str:
        """Milliseconds since the epoch, strictly increasing even within one millisecond (no await in between,
        so concurrent calls on the event loop cannot share one)."""
        self._last_nonce = max(int(self._clock() * 1000), self._last_nonce + 1)
        return str(self._last_nonce)

    def _headers(self) -> dict[str, str]:
        headers = {"x-api-key": self.settings.api_key, "Accept": "application/json"}
        if self.settings.api_secret:
            nonce = self._next_nonce()
            headers["x-nonce"] = nonce
            headers["x-signature"] = _signature(self.settings.api_key, self.settings.api_secret, nonce)
        return headers

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.settings.api_base_url.rstrip("/") + path
        try:
            response = await self.http.post(url, json=body, headers=self._headers())
        except httpx.TimeoutException:
            raise ProviderError(504, "upstream_timeout", "Wiro did not answer in time.") from None
        except (httpx.HTTPError, httpx.InvalidURL):
            # InvalidURL: a malformed WIRO_API_BASE_URL.
            raise ProviderError(502, "upstream_unreachable", "Wiro could not be reached.") from None
        return _parse(response, path)


def _parse(response: httpx.Response, path: str) -> dict[str, Any]:
    """Wiro's answer as a dict, or the ProviderError it means. The body decides (the docs disagree on HTTP
    statuses), except that a 5xx or an unreadable body is always an upstream failure."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        if response.status_code >= 500:
            raise ProviderError(502, "upstream_error", f"Wiro failed (HTTP {response.status_code}).")
        raise ProviderError(502, "upstream_bad_response", "Wiro sent an unreadable answer.")
    if data.get("result") is True and response.is_success:
        return data
    if response.status_code >= 500:
        raise ProviderError(502, "upstream_error", f"Wiro failed (HTTP {response.status_code}).")
    code, message = _first_error(data)
    raise _error(code, message, response.status_code, path)


def _first_error(data: dict[str, Any]) -> tuple[int | None, str]:
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        message = errors[0].get("message")
        return (code if isinstance(code, int) else None), (message if isinstance(message, str) else "")
    return None, ""


def _error(code: int | None, message: str, http_status: int, path: str) -> ProviderError:
    if code == 96:
        return ProviderError(
            429,
            "wiro_concurrency",
            "Wiro's concurrency limit is reached: end another session or wait.",
            retry_after=CONCURRENCY_RETRY_AFTER_S,
        )
    if code == 97:
        return ProviderError(402, "wiro_balance", "Wiro balance is insufficient: add funds to the Wiro account.")
    if code == 98:
        return ProviderError(502, "wiro_sign_in", "Wiro requires a signed-in account to run this model.")
    if code == 99 or message in _AUTH_MESSAGES:
        text = _AUTH_MESSAGES.get(message, "Wiro rejected the configured credentials.")
        return ProviderError(502, "wiro_auth", text)
    if http_status == 404 and code in (0, None):
        return ProviderError(502, "wiro_bad_url", "Wiro does not know this endpoint: check WIRO_API_BASE_URL.")
    if code == 1:
        what = "the model (check WIRO_MODEL)" if path.startswith("/Run/") else "the task"
        return ProviderError(502, "wiro_not_found", f"Wiro cannot find {what}.")
    if http_status == 401:
        return ProviderError(502, "wiro_auth", "Wiro rejected the configured credentials.")
    return ProviderError(502, "wiro_refused", "Wiro refused the request.")
