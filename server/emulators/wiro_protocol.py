"""Pure parts of the Wiro realtime speech-to-text protocol: auth, frame parsing, event shapes, increments.

Written from ../shared/specs/wiro.md (the vendor's Realtime Speech to Text page and its public docs). No
sockets and no clock here, so every rule can be tested without a server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TRANSCRIPT_PREFIX = "TRANSCRIPT_USER:"
# The client→server audio frame: ASCII token, one 0x7C byte, then PCM16LE mono at 24 kHz.
FRAME_SEPARATOR = b"|"
SAMPLE_RATE = 24_000
TOKEN_LENGTH = 30
TOKEN_ALPHABET = string.ascii_letters + string.digits

# The exact texts of the vendor's error reference.
MSG_KEY_NOT_FOUND = "Project authorization is not founded."
MSG_SIGNATURE_REQUIRED = "Project requires signature authentication. x-signature and x-nonce headers are required."
MSG_SIGNATURE_INVALID = "Project authorization is not valid."
MSG_URL = "Error parsing url."
MSG_INVALID_BODY = "Request parameters are invalid."
MSG_MODEL_NOT_FOUND = "slug-owner-project-not-exist"
MSG_BALANCE = "Insufficient balance"
MSG_SIGN_IN = "sign in to run this model"
MSG_NO_TASK = "There is no task yet."
MSG_IDENTIFIER_REQUIRED = "taskid or socketaccesstoken is required"
MSG_NOT_CANCELLABLE = "Task is not in a cancellable state."
# The {reason} of "Task could not be killed: {reason}" is not documented; this one is the emulator's.
KILL_QUEUED_REASON = "the task is still in the queue stage; cancel it instead"

CODE_GENERAL = 0
CODE_NOT_FOUND = 1
CODE_CONCURRENCY = 96
CODE_BALANCE = 97
CODE_SIGN_IN = 98

LIFECYCLE = (
    "task_queue",
    "task_accept",
    "task_preprocess_start",
    "task_preprocess_end",
    "task_assign",
    "task_start",
)


def concurrency_message(balance: float, max_concurrent: int) -> str:
    return (
        "You have reached your concurrent task limit. "
        f"With your current balance of ${balance:.2f}, you can run up to {max_concurrent} tasks "
        "at the same time. Add funds to increase your limit."
    )


def kill_failed_message(reason: str) -> str:
    return f"Task could not be killed: {reason}"


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"result": False, "errors": [{"code": code, "message": message}]}


def sign(api_key: str, api_secret: str, nonce: str) -> str:
    """x-signature: lowercase hex HMAC-SHA256, key = API key, message = secret + nonce (path, body unsigned)."""
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuthFailure:
    message: str


def check_auth(
    headers: dict[str, str], *, api_key: str, api_secret: str, seen_nonces: set[str] | None = None
) -> AuthFailure | None:
    """None when the headers authenticate; otherwise the vendor's error. `seen_nonces`, when given, rejects a
    nonce used before (the real service's policy is unknown; the emulator makes it an option)."""
    key = headers.get("x-api-key", "")
    if not key or not hmac.compare_digest(key.encode(), api_key.encode()):
        return AuthFailure(MSG_KEY_NOT_FOUND)
    if not api_secret:
        return None
    nonce = headers.get("x-nonce", "")
    signature = headers.get("x-signature", "")
    if not nonce or not signature:
        return AuthFailure(MSG_SIGNATURE_REQUIRED)
    # Exactly the lowercase hex the spec defines: a client sending uppercase hex must learn it here, not upstream.
    if not hmac.compare_digest(signature.encode(), sign(api_key, api_secret, nonce).encode()):
        return AuthFailure(MSG_SIGNATURE_INVALID)
    if seen_nonces is not None:
        if nonce in seen_nonces:
            return AuthFailure(MSG_SIGNATURE_INVALID)
        seen_nonces.add(nonce)
    return None


def new_socket_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


# --- client → server messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInfo:
    tasktoken: str


@dataclass(frozen=True)
class SessionEnd:
    tasktoken: str


@dataclass(frozen=True)
class BadMessage:
    reason: str


ClientText = TaskInfo | SessionEnd | BadMessage


def parse_client_text(text: str) -> ClientText:
    """A client text frame as a typed value. Unknown fields are ignored; anything unusable is a BadMessage."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return BadMessage("malformed JSON")
    if not isinstance(data, dict):
        return BadMessage("message is not a JSON object")
    kind = data.get("type")
    token = data.get("tasktoken")
    if kind not in ("task_info", "task_session_end"):
        return BadMessage(f"unknown message type {str(kind)[:40]!r}")
    if not isinstance(token, str) or not token:
        return BadMessage(f"{kind} without a tasktoken")
    return TaskInfo(token) if kind == "task_info" else SessionEnd(token)


@dataclass(frozen=True)
class AudioFrame:
    tasktoken: str
    pcm: bytes


def parse_audio_frame(data: bytes) -> AudioFrame | BadMessage:
    """`token|pcm`, split on the FIRST 0x7C: the token is alphanumeric, while PCM bytes may contain 0x7C."""
    token, sep, pcm = data.partition(FRAME_SEPARATOR)
    if not sep:
        return BadMessage("binary frame without '|'")
    try:
        text = token.decode("ascii")
    except UnicodeDecodeError:
        return BadMessage("binary frame token is not ASCII")
    if not text:
        return BadMessage("binary frame with an empty token")
    if len(pcm) % 2:
        return BadMessage("odd-length PCM16 payload")
    return AudioFrame(text, pcm)


# --- server → client events ---------------------------------------------------------------------------------


def event(kind: str, *, task_id: str | None, tasktoken: str | None, **fields: Any) -> dict[str, Any]:
    """A server event. `id`/`tasktoken` are included when given (clients must rely on neither)."""
    out: dict[str, Any] = {"type": kind}
    if task_id is not None:
        out["id"] = task_id
    if tasktoken is not None:
        out["tasktoken"] = tasktoken
    out.update(fields)
    return out


def transcript_message(word: str, *, leading_space: bool) -> str:
    return TRANSCRIPT_PREFIX + (" " if leading_space else "") + word


# --- the "chatty" stream: what the spec tells a client to ignore ---------------------------------------------

# Lifecycle events the spec's list does not name ("…"): one before task_stream_ready, one among the increments.
CHATTY_LIFECYCLE = "task_model_warmup"
CHATTY_EVENT = "task_progress"
# Events after which the model process has exited, with the exit code the chatty stream gives them.
_TERMINAL = {"task_end": 0, "task_postprocess_end": 0, "task_cancel": 1}


def chatty_fields(kind: str) -> dict[str, Any]:
    """The fields newer revisions add to every frame (the spec: rely on none)."""
    terminal = kind in _TERMINAL
    return {"result": True, "success": kind != "task_error", "terminal": terminal, "exitCode": _TERMINAL.get(kind)}


def chatty_output(n: int) -> str:
    """A task_output that is not a transcript: it names the prefix, but does not start with it."""
    return f"[model] chunk {n} decoded; next {TRANSCRIPT_PREFIX}logleak{n}"


def chatty_log(n: int) -> str:
    """A task_error: a log line, not a failure (nor a transcript, even when it starts like one)."""
    return f"{TRANSCRIPT_PREFIX}errleak{n} stderr: decoder queue at {n}"


# --- transcript increments ----------------------------------------------------------------------------------

_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_ALTERNATE = re.compile(r"\(\d+\)$")


def spoken_words(words: Iterable[str]) -> list[str]:
    """Words a listener would write: drops recognizer fillers (<sil>, [NOISE]) and alternate markers (2)."""
    out = []
    for raw in words:
        word = _ALTERNATE.sub("", raw.strip())
        if word and not _FILLER.match(word):
            out.append(word)
    return out


class Increments:
    """Turns a recognizer's hypotheses into word increments that are never retracted.

    Policy "stable" (default): a word is sent once it sits at the same position in two consecutive partials of
    the same utterance and is not one of the partial's newest three words (those are the ones most often
    revised: increments from the embedded engine's fast partials, on the 13 human clips and the reading in
    Wiro's 200 ms frames, got 47 of 184 words wrong holding back one word, 40 holding back two, 39 three; the
    words come about two words later); the final sends what is left. Policy "final": words are sent only when
    their utterance is final. When a final disagrees with words already sent, nothing is retracted: only the
    final's words past the sent count follow.
    """

    HELD_BACK = 3  # a partial's newest words: sent only once later partials or the final confirm them

    def __init__(self, policy: str = "stable") -> None:
        if policy not in ("stable", "final"):
            raise ValueError("increment policy must be 'stable' or 'final'")
        self.policy = policy
        self._previous: list[str] = []
        self._sent = 0

    def partial(self, words: Sequence[str]) -> list[str]:
        current = spoken_words(words)
        if self.policy == "final":
            return []
        stable = 0
        limit = min(len(self._previous), len(current) - self.HELD_BACK)
        while stable < limit and self._previous[stable] == current[stable]:
            stable += 1
        self._previous = current
        new = current[self._sent : stable]
        self._sent = max(self._sent, stable)
        return new

    def final(self, words: Sequence[str]) -> list[str]:
        current = spoken_words(words)
        new = current[self._sent :]
        self._previous = []
        self._sent = 0
        return new
