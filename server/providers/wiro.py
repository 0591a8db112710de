"""Wiro: the server-side half. The API key (and secret) stay here; the browser gets the task's socket token.

Each session is a billed Wiro task that holds one of the account's concurrency slots until it ends, so every task
started goes into the task registry (server.state: this process's memory, or Redis shared by every replica) and is
ended when the page says the session ended (through any replica), when it outlives `task_deadline_s` (by any
replica's reaper, so a SIGKILLed replica's tasks still die), and, for a lone process without shared state, at
shutdown. Run is never retried: a retry could start a second billed task.

Ending a task (see _end_upstream): POST /Task/Kill ends a running one ("any status after assign", the tasks page
says) and refuses one still queued, with the same code 1 "Task could not be killed: {reason}" it gives an ended
one; a task whose socket never registered (the page closed before the stream was ready) may well still be queued.
So a refused kill is followed by POST /Task/Cancel (queued tasks only), and when that refuses too, by
POST /Task/Detail: the record is dropped only when Wiro ended the task at our request, says it has no such task, or
shows it ended.

Upstream failures become ApiError with fixed messages (never a secret, never Wiro's body verbatim):
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
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from server.errors import ApiError
from server.providers.base import Grant, ProviderStatus, SessionPolicy, SessionRequest, VendorHosted
from server.providers.wiro_tasks import TaskRegistry, WiroTask, task_registry
from server.settings import WiroSettings
from server.state import MemoryState, State, StateUnavailable
from server.upstream import upstream_call
from server.wire import DelayOptions, seconds_left

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 4_800
CONCURRENCY_RETRY_AFTER_S = 15.0
# Bounds the kills at shutdown, so a dead upstream cannot hold the app's exit.
ACLOSE_TIMEOUT_S = 5.0
# A kill that failed for a transport reason is tried again this much later. After KILL_ATTEMPTS failures, or at once
# when retrying cannot change the answer (credentials refused, an unreadable answer), the task is stuck: it stays
# registered (the only record of a task that may still be running and billed), is logged at ERROR and counted on
# every failed try, and is tried again every STUCK_RETRY_S until it dies or a person ends it.
KILL_RETRY_S = 30.0
KILL_ATTEMPTS = 3
STUCK_RETRY_S = 600.0
TRANSIENT_CODES = frozenset({"upstream_timeout", "upstream_unreachable", "upstream_error"})
# Kill and Cancel both refused a task that Task/Detail shows still live: it most likely left the queue between the
# two calls (Cancel then comes too late, and the next Kill works), so it is retried as a transport failure is.
TASK_REFUSED = "wiro_task_refused"
RETRIED_CODES = TRANSIENT_CODES | {TASK_REFUSED}
# Task/Detail statuses after which a task holds no slot: the tasks page's final ones (the process exited, or the task
# was cancelled or killed), and the bare "end"/"cancel"/"error" its own polling example stops on.
ENDED_STATUSES = frozenset(
    {
        "task_end",
        "task_output_full",
        "task_error_full",
        "task_postprocess_start",
        "task_postprocess_end",
        "task_cancel",
        "end",
        "cancel",
        "error",
    }
)
# Wiro's exact answer (code 1) to a task call naming a task it does not know.
MSG_NO_TASK = "There is no task yet."
# A process that claimed a kill and died mid-way loses the claim after this long; another then kills the task.
KILL_LEASE_S = 60.0

_AUTH_MESSAGES = {
    "Project authorization is not founded.": "Wiro rejected the configured API key (WIRO_API_KEY).",
    "Project requires signature authentication. x-signature and x-nonce headers are required.": (
        "The Wiro project requires signature authentication: set WIRO_API_SECRET."
    ),
    "Project authorization is not valid.": "Wiro rejected the request signature: check WIRO_API_SECRET.",
}


def _signature(api_key: str, api_secret: str, nonce: str) -> str:
    """Wiro's x-signature: lowercase hex HMAC-SHA256 with key = API key over secret + nonce (UTF-8)."""
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


class WiroProvider(VendorHosted):
    name = "wiro"

    def __init__(
        self,
        settings: WiroSettings,
        http: httpx.AsyncClient,
        *,
        state: State | None = None,
        clock: Callable[[], float] = time.time,
        per_client: int = 4,
    ) -> None:
        self.settings = settings
        self.http = http
        # Tasks one client may hold at once (APP_MAX_SESSIONS_PER_CLIENT): each is billed until killed.
        self.per_client = per_client
        # The task registry lives in the shared state, so any process can end any task and a survivor reaps the
        # tasks of a process that died.
        self.state = state if state is not None else MemoryState()
        self.tasks: TaskRegistry = task_registry(self.state)
        self._clock = clock
        # Tasks this process started and still believes held, with their deadlines: the reaper wakes for the
        # nearest one rather than waiting a whole polling interval.
        self._mine: dict[str, float] = {}
        # Tasks started here that the registry never recorded (the store failed) and whose kill failed too: nobody
        # else can find them, so this process tries the kill again at each sweep (task, next try).
        self._unrecorded: dict[str, tuple[WiroTask, float]] = {}
        # Failed kills by error code, for the operator (and the tests): each one is a task that may still be billed.
        self.kill_failures: Counter[str] = Counter()
        # The last nonce this process sent, so a kill can get a fresh one when the shared store is down.
        self._last_nonce = 0
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # --- the Provider interface -------------------------------------------------------------------------------

    def status(self) -> ProviderStatus:
        missing = self.settings.missing()
        mode = "signature" if self.settings.api_secret else "API key only"
        detail = f"authentication: {mode}" if not missing else "set WIRO_API_KEY to use Wiro"
        return ProviderStatus(self.name, "Wiro", configured=not missing, missing=missing, detail=detail)

    def policy(self) -> SessionPolicy:
        # A grant starts a task upstream, billed until killed: it holds a place in the client's cloud ledger.
        return SessionPolicy(pool="cloud", per_client=self.per_client)

    def connect_origins(self) -> list[str]:
        parts = urlsplit(self.settings.socket_url)
        return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []

    async def options(self) -> DelayOptions:
        return DelayOptions(self.settings.transcription_delay)

    async def start(self) -> None:
        """Every process reaps, whether or not it started a task: a dead replica's tasks are killed by another."""
        if not self.settings.missing():
            self._ensure_reaper()

    async def create_session(self, request: SessionRequest) -> Grant:
        run = parse_run(
            await self._post(f"/Run/{self.settings.model}", {"transcriptionDelay": self.settings.transcription_delay})
        )
        task_id, token = run.task_id, run.token
        # The page names its session by a random handle, never by Wiro's sequential task id: anyone who can reach
        # the app could otherwise end other people's tasks by counting.
        handle = request.session_id
        if not run.usable:
            # Wiro started a task, billed until it ends, that no page can use: end it by whatever its answer named
            # (the task calls take the id or the token), and keep trying as for any task the registry does not know.
            named = WiroTask(task_id, token, handle, 0)
            if named.task_id or named.token:
                await self._kill_unrecorded(named)
            else:
                log.error("wiro: Run's answer named no task to kill: if Wiro started one, end it in Wiro's console")
            raise ApiError(502, "upstream_bad_response", "Wiro started a task but its answer was incomplete.")
        task = WiroTask(task_id, token, handle, self._clock() + self.settings.task_deadline_s)
        try:
            await self.tasks.put(task)
        except StateUnavailable:
            # Nobody could end or reap a task the registry does not know: kill it now rather than bill it. The kill's
            # nonce must not need the store that just failed.
            await self._kill_unrecorded(task)
            raise
        self._mine[task_id] = task.deadline
        self._ensure_reaper()
        self._changed.set()
        return Grant(
            provider=self.name,
            protocol="wiro",
            ws_url=self.settings.socket_url,
            token=token,
            expires_at=task.deadline,
            expires_in=seconds_left(task.deadline, self._clock()),
            sample_rate=SAMPLE_RATE,
            frame_samples=FRAME_SAMPLES,
            session_id=handle,
            task_id=task_id,
        )

    async def end_session(self, session_id: str) -> bool:
        """Kill the task (the page ended, or its pagehide beacon arrived), whichever process started it. Unknown
        handles are ignored, so a page can only end tasks this app started. True when this call ended it."""
        task = await self.tasks.by_handle(session_id)
        ended = await self._kill(task) if task is not None else False
        # The sweep is a courtesy to the reaper: its failing must not fail this call (the page's own task is
        # already dealt with), and the reaper tries again.
        try:
            await self.sweep()
        except StateUnavailable as exc:
            log.warning("wiro: could not look for expired tasks after an end call (%s)", exc)
        return ended

    async def aclose(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        # With shared state the tasks stay registered: the page may still end them through another process, and
        # the survivors reap them at their deadlines. Alone, this process is the last that knows them.
        unrecorded = [t for t, _ in self._unrecorded.values()]
        registered: list[WiroTask] = []
        if not self.state.shared and self._mine:
            registered = [t for t in await self._registered(list(self._mine)) if t is not None]
        # The tasks the registry never knew are this process's alone, whatever the state: a last try each.
        kills: dict[asyncio.Future[object], WiroTask] = {
            asyncio.ensure_future(self._kill_unrecorded(t)): t for t in unrecorded
        }
        kills |= {asyncio.ensure_future(self._kill(t, final=True)): t for t in registered}
        if kills:
            _, late = await asyncio.wait(kills, timeout=ACLOSE_TIMEOUT_S)
            for kill in late:
                kill.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for kill in late:
                if kills[kill] in registered:
                    log.error(
                        "wiro: killing task %s at shutdown got no answer in %g s: it may run, billed, until Wiro "
                        "ends it; kill it in Wiro's console",
                        kills[kill].task_id,
                        ACLOSE_TIMEOUT_S,
                    )
            for task, _ in self._unrecorded.values():
                log.error(
                    "wiro: task %s was never recorded and is still not killed at shutdown: it may run, billed, "
                    "until Wiro ends it; kill it in Wiro's console",
                    _named(task),
                )
        self._mine.clear()

    # --- task tracking ------------------------------------------------------------------------------------------

    def tracked(self) -> list[str]:
        """Task ids this process started that are still held (not yet ended or killed by any process it knows
        of)."""
        return list(self._mine)

    async def _registered(self, task_ids: list[str]) -> list[WiroTask | None]:
        return [await self.tasks.get(i) for i in task_ids]

    def _ensure_reaper(self) -> None:
        if not self._closed and (self._reaper is None or self._reaper.done()):
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop(), name="wiro-task-reaper")

    async def _reap_loop(self) -> None:
        """Kills tasks past their deadline even when no page ever calls again: this process's and any other's."""
        while not self._closed:
            try:
                await self.sweep()
            except StateUnavailable as exc:
                log.warning("wiro: could not look for expired tasks (%s); will try again", exc)
            except Exception:
                # Anything else would end the loop, and with it every kill at a deadline in this process: billed
                # tasks left running. Log it and go on.
                log.exception("wiro: looking for expired tasks failed; will try again")
            # What is still ours past its deadline was ended, or is being killed, by another process: forget it
            # (a postponed kill moved its deadline on).
            now = self._clock()
            for task_id in [t for t, deadline in self._mine.items() if deadline <= now]:
                del self._mine[task_id]
            wait = self.settings.reap_interval_s
            if self._mine:
                wait = min(wait, max(0.0, min(self._mine.values()) - self._clock()))
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    async def sweep(self) -> None:
        """One pass of the reaper: kill every task past its deadline (any process's) and retry the kills of tasks
        the registry never recorded."""
        await self._retry_unrecorded()
        await self._reap_expired()

    async def _reap_expired(self) -> None:
        expired = await self.tasks.due(self._clock())
        if not expired:
            return
        # Every kill runs to its end before the sweep does: one failing must neither fail the others nor leave them
        # running unwatched. A failed one keeps its record (it was claimed, not dropped) and is taken again when its
        # claim lapses.
        results = await asyncio.gather(*(self._kill(t) for t in expired), return_exceptions=True)
        for task, result in zip(expired, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "wiro: killing task %s failed part-way (%s); it stays registered and is tried again",
                    task.task_id,
                    type(result).__name__,
                )

    async def _retry_unrecorded(self) -> None:
        now = self._clock()
        due = [task for task, at in self._unrecorded.values() if at <= now]
        if due:
            await asyncio.gather(*(self._kill_unrecorded(t) for t in due), return_exceptions=True)

    async def _kill_unrecorded(self, task: WiroTask) -> None:
        """End a task the registry does not know, needing nothing from the store. A failure is logged at ERROR,
        counted, and the kill tried again at the next sweeps from this process's memory (nobody else knows it)."""
        key = task.task_id or task.handle
        try:
            await self._end_upstream(task)
        except ApiError as exc:
            self.kill_failures[exc.code] += 1
            self._unrecorded[key] = (task, self._clock() + KILL_RETRY_S)
            log.error(
                "wiro: task %s, which the registry does not know, could not be killed (%s): it may be running "
                "and billed; this process tries again every %g s",
                _named(task),
                exc.code,
                KILL_RETRY_S,
            )
            return
        self._unrecorded.pop(key, None)

    async def _kill(self, task: WiroTask, *, final: bool = False) -> bool:
        """End the task upstream (_end_upstream), by whichever process claims it first. Only a task Wiro ended, has
        no record of, or shows ended has its record dropped; any other outcome keeps it (see KILL_ATTEMPTS). True
        when this call dropped the record."""
        # At a lone process's shutdown its own claim (a kill postponed after a failure, or one under way) must not
        # stop this last try: the registry goes with the process, and a second kill of a task only gets "ended".
        if not final and not await self.tasks.claim(task.task_id, KILL_LEASE_S):
            return False
        try:
            await self._end_upstream(task)
        except ApiError as exc:
            await self._kill_failed(task, exc.code, final=final)
            return False
        dropped = await self.tasks.drop(task)
        self._mine.pop(task.task_id, None)
        self._changed.set()
        return dropped

    async def _end_upstream(self, task: WiroTask) -> None:
        """Returns once the task holds no slot upstream: Kill or Cancel ended it, Wiro has no such task, or Detail
        shows it ended. Raises the ApiError of the call that failed, or TASK_REFUSED when Wiro refused both and shows
        the task still live (it may be billed: the caller keeps its record)."""
        body = _task_body(task)
        for action in ("Kill", "Cancel"):
            # Kill first: a task past the queue stage is the usual case, and Cancel can end only a queued one.
            try:
                parse_task_call(await self._post(f"/Task/{action}", body, kill=True))
                return
            except ApiError as exc:
                if exc.code == "wiro_not_found":
                    return
                if exc.code != TASK_REFUSED:
                    raise
        # Both refused: either it ended already (the common case: the page ends its session after the socket's
        # last event) or it left the queue between the two calls. Only Detail tells which.
        status = parse_detail(await self._post("/Task/Detail", body, kill=True))
        if status is None or status in ENDED_STATUSES:
            return
        log.warning(
            "wiro: Wiro would neither kill nor cancel task %s, whose status is %r", _named(task), status[:40] or None
        )
        raise ApiError(502, TASK_REFUSED, "Wiro would neither kill nor cancel the task.")

    async def _kill_failed(self, task: WiroTask, code: str, *, final: bool) -> None:
        attempts = task.attempts + 1
        self.kill_failures[code] += 1
        if final:
            # Shutdown of a lone process: its memory (the registry) goes with it, so this is the last word.
            log.error(
                "wiro: killing task %s at shutdown failed (%s): it may run, billed, until Wiro ends it; kill it in "
                "Wiro's console",
                task.task_id,
                code,
            )
            return
        if code in RETRIED_CODES and attempts < KILL_ATTEMPTS:
            log.warning("wiro: killing task %s failed (%s); will retry", task.task_id, code)
            retry_at = self._clock() + KILL_RETRY_S
        else:
            log.error(
                "wiro: task %s could not be killed (%s, attempt %d): it may be running and billed. It stays "
                "registered and is tried again every %g s; if this goes on, fix the cause or kill it in Wiro's "
                "console",
                task.task_id,
                code,
                attempts,
                STUCK_RETRY_S,
            )
            retry_at = self._clock() + STUCK_RETRY_S
        await self.tasks.postpone(task, retry_at)
        if task.task_id in self._mine:
            self._mine[task.task_id] = retry_at
        self._changed.set()

    # --- HTTP ---------------------------------------------------------------------------------------------------

    async def _nonce(self, *, kill: bool) -> int:
        """Milliseconds since the epoch, strictly increasing across every process sharing the state: Wiro refuses a
        nonce it has seen, and replicas' clocks and request bursts would otherwise collide. With the store down a
        kill still gets one (past anything this process sent; a collision with another replica's only makes Wiro
        refuse that one kill, which is then logged and retried): a kill that cannot go out leaves a task billed. A
        Run does not: better refuse the session than start a task nobody can record."""
        now_ms = int(self._clock() * 1000)
        try:
            nonce = await self.tasks.next_nonce(now_ms)
        except StateUnavailable as exc:
            if not kill:
                raise
            nonce = max(now_ms, self._last_nonce + 1)
            log.warning("wiro: shared nonce unavailable (%s); a kill uses this process's own", exc)
        self._last_nonce = max(self._last_nonce, nonce)
        return nonce

    async def _headers(self, *, kill: bool = False) -> dict[str, str]:
        headers = {"x-api-key": self.settings.api_key, "Accept": "application/json"}
        if self.settings.api_secret:
            nonce = str(await self._nonce(kill=kill))
            headers["x-nonce"] = nonce
            headers["x-signature"] = _signature(self.settings.api_key, self.settings.api_secret, nonce)
        return headers

    async def _post(self, path: str, body: Mapping[str, str], *, kill: bool = False) -> httpx.Response:
        """Wiro's answer, whatever it says (parse_run, parse_task_call and parse_detail read it); transport failures
        as ApiError."""
        url = self.settings.api_base_url.rstrip("/") + path
        headers = await self._headers(kill=kill)
        with upstream_call("Wiro", unreachable="Wiro could not be reached."):
            return await self.http.post(url, json=body, headers=headers)


def _task_body(task: WiroTask) -> dict[str, str]:
    """The body of Task/Kill, Cancel and Detail: the task's id and its token, or the one of them a broken Run answer
    named. The token goes under both names in use: `tasktoken` (the tasks page's, for all three calls) and
    `socketaccesstoken` (the name Run gives it, and the error reference's)."""
    fields = (("taskid", task.task_id), ("tasktoken", task.token), ("socketaccesstoken", task.token))
    return {k: v for k, v in fields if v}


def _named(task: WiroTask) -> str:
    """A task as the log names it: by its id, never by its token (a credential for its socket)."""
    return task.task_id or "(Wiro's answer named no id)"


@dataclass(frozen=True)
class RunAnswer:
    """What Wiro's Run answer named: the task's id and its socket's access token, each "" when the answer had none
    (or one of another type). A task may have started all the same: it is killed by whichever of the two it named."""

    task_id: str
    token: str

    @property
    def usable(self) -> bool:
        """A page can stream to it. The token goes into every audio frame before a `|`: only ASCII letters and
        digits are safe there."""
        return bool(self.task_id) and self.token.isascii() and self.token.isalnum()


def parse_run(response: httpx.Response) -> RunAnswer:
    """Run's answer, or the ApiError it means (see _accepted)."""
    data = _accepted(response, run=True)
    raw_id, raw_token = data.get("taskid"), data.get("socketaccesstoken")
    # Wiro's ids are numbers in some answers, strings in others; a bool is neither.
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    return RunAnswer(raw_id if isinstance(raw_id, str) else "", raw_token if isinstance(raw_token, str) else "")


def parse_task_call(response: httpx.Response) -> None:
    """Nothing when Wiro accepted Task/Kill or Task/Cancel (the answer carries nothing else read here), else the
    ApiError it means: `wiro_not_found` for no such task, TASK_REFUSED for any other code 1 (a kill or a cancel
    refused, the task being past or not yet at the stage the call ends)."""
    _accepted(response, run=False)


def parse_detail(response: httpx.Response) -> str | None:
    """The task's status from Task/Detail (`tasklist[0].status`), None when Wiro has no such task, "" when the answer
    names none (so it is not taken for ended), else the ApiError the answer means."""
    try:
        data = _accepted(response, run=False)
    except ApiError as exc:
        if exc.code == "wiro_not_found":
            return None
        raise
    tasks = data.get("tasklist")
    first = tasks[0] if isinstance(tasks, list) and tasks else None
    status = first.get("status") if isinstance(first, dict) else None
    return status if isinstance(status, str) else ""


def _accepted(response: httpx.Response, *, run: bool) -> Mapping[str, object]:
    """Wiro's accepted answer as a JSON object, or the ApiError it means. The body decides (the docs disagree on
    HTTP statuses), except that a 5xx or an unreadable body is always an upstream failure."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        if response.status_code >= 500:
            raise ApiError(502, "upstream_error", f"Wiro failed (HTTP {response.status_code}).")
        raise ApiError(502, "upstream_bad_response", "Wiro sent an unreadable answer.")
    if data.get("result") is True and response.is_success:
        return data
    if response.status_code >= 500:
        raise ApiError(502, "upstream_error", f"Wiro failed (HTTP {response.status_code}).")
    code, message = _first_error(data)
    raise _error(code, message, response.status_code, run=run)


def _first_error(data: Mapping[str, object]) -> tuple[int | None, str]:
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        message = errors[0].get("message")
        return (code if isinstance(code, int) else None), (message if isinstance(message, str) else "")
    return None, ""


def _error(code: int | None, message: str, http_status: int, *, run: bool) -> ApiError:
    if code == 96:
        return ApiError(
            429,
            "wiro_concurrency",
            "Wiro's concurrency limit is reached: end another session or wait.",
            retry_after=CONCURRENCY_RETRY_AFTER_S,
        )
    if code == 97:
        return ApiError(402, "wiro_balance", "Wiro balance is insufficient: add funds to the Wiro account.")
    if code == 98:
        return ApiError(502, "wiro_sign_in", "Wiro requires a signed-in account to run this model.")
    if code == 99 or message in _AUTH_MESSAGES:
        text = _AUTH_MESSAGES.get(message, "Wiro rejected the configured credentials.")
        return ApiError(502, "wiro_auth", text)
    if http_status == 404 and code in (0, None):
        return ApiError(502, "wiro_bad_url", "Wiro does not know this endpoint: check WIRO_API_BASE_URL.")
    if code == 1 and run:
        return ApiError(502, "wiro_not_found", "Wiro cannot find the model (check WIRO_MODEL).")
    if code == 1:
        # The task calls' code 1 is either "no such task" (its message is the only way to tell) or a refusal:
        # "Task could not be killed: {reason}" (queued, or ended), "Task is not in a cancellable state.".
        if message.strip() == MSG_NO_TASK:
            return ApiError(502, "wiro_not_found", "Wiro cannot find the task.")
        return ApiError(502, TASK_REFUSED, "Wiro refused to end the task.")
    if http_status == 401:
        return ApiError(502, "wiro_auth", "Wiro rejected the configured credentials.")
    return ApiError(502, "wiro_refused", "Wiro refused the request.")
