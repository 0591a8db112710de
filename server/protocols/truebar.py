"""Truebar streaming protocol, pure: parse what a client sends, build what the server sends. No sockets here.

Written from ../shared/specs/truebar.md. Input accepts either envelope key (`type`, as the vendor's guide
writes, or `messageType`, as community clients do); output uses the key the caller chooses.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from server.transcript import Hypothesis

EnvelopeKey = Literal["type", "messageType"]

STATUS_INITIALIZED = "INITIALIZED"
STATUS_CONFIGURED = "CONFIGURED"
STATUS_FINISHED = "FINISHED"
STATUS_CANCELED = "CANCELED"

ASR_TASK = "ASR"
PUNCTUATION_TASK = "NLP_pc"
POLICIES = frozenset({"THROW", "SKIP"})
# FRAMEWORK:language:domain:version, each part a name or the `*` wildcard.
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*]+(:[A-Za-z0-9_.\-*]+){3}$")
KNOWN_ASR_PARAMETERS = frozenset({"enableInterims", "enableUnks", "enableDiarization"})


class ProtocolError(Exception):
    """A client message the server must answer with ERROR (and a close)."""


@dataclass(frozen=True)
class Stage:
    task: str
    tag: str
    parameters: Mapping[str, Any]
    policy: str = "THROW"


@dataclass(frozen=True)
class Config:
    stages: tuple[Stage, ...]

    @property
    def asr(self) -> Stage:
        return self.stages[0]

    @property
    def enable_interims(self) -> bool:
        return self.asr.parameters.get("enableInterims") is True

    def unknown_asr_parameters(self) -> list[str]:
        return sorted(k for k in self.asr.parameters if k not in KNOWN_ASR_PARAMETERS)


@dataclass(frozen=True)
class Eos:
    lock_session: bool = False


@dataclass(frozen=True)
class Cancel:
    pass


ClientMessage = Config | Eos | Cancel


def parse_client_text(text: str) -> ClientMessage:
    """One text frame from the client. Raises ProtocolError: malformed JSON, unknown type, bad pipeline."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("Malformed message: not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("Malformed message: expected a JSON object.")
    kind = data.get("type", data.get("messageType"))
    if kind == "CONFIG":
        return Config(parse_pipeline(data.get("pipeline")))
    if kind == "EOS":
        lock = data.get("lockSession", False)
        if not isinstance(lock, bool):
            raise ProtocolError("Malformed EOS: lockSession must be a boolean.")
        return Eos(lock)
    if kind == "CANCEL":
        return Cancel()
    raise ProtocolError(f"Unknown message type: {str(kind)[:40]!r}.")


TokenSource = Literal["header", "query"]


def bearer_token(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str, TokenSource] | None:
    """The access token a request carries, and where: `Authorization: Bearer <token>` from a client that can set
    headers (a server, as the vendor's quickstarts do), else the `access_token` query parameter (a browser cannot
    set headers on a WebSocket). None when it carries neither. `headers` keys are lower case, as ASGI gives them.
    A header, when there, is the token even beside a query one: it is what the client chose to set."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "header"
    token = query.get("access_token", "")
    return (token, "query") if token else None


def parse_pipeline(raw: object) -> tuple[Stage, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("Malformed pipeline: expected a non-empty list of stages.")
    stages = tuple(_parse_stage(i, item) for i, item in enumerate(raw))
    if stages[0].task != ASR_TASK:
        raise ProtocolError("Malformed pipeline: the first stage must be ASR (the stream carries audio).")
    if sum(1 for s in stages if s.task == ASR_TASK) > 1:
        raise ProtocolError("Malformed pipeline: more than one ASR stage.")
    return stages


def _parse_stage(index: int, raw: object) -> Stage:
    where = f"Malformed pipeline stage {index}"
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: expected an object.")
    task = raw.get("task")
    if not isinstance(task, str) or not task:
        raise ProtocolError(f"{where}: missing task.")
    policy = raw.get("exceptionHandlingPolicy", "THROW")
    if not isinstance(policy, str) or policy not in POLICIES:
        raise ProtocolError(f"{where}: exceptionHandlingPolicy must be THROW or SKIP.")
    config = raw.get("config")
    if not isinstance(config, dict):
        raise ProtocolError(f"{where}: missing config object.")
    tag = config.get("tag")
    if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
        raise ProtocolError(f"{where}: config.tag must look like FRAMEWORK:language:domain:version.")
    parameters = config.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError(f"{where}: config.parameters must be an object.")
    interims = parameters.get("enableInterims", False)
    if not isinstance(interims, bool):
        raise ProtocolError(f"{where}: enableInterims must be a boolean.")
    return Stage(task, tag, dict(parameters), str(policy))


def stage_tags(stages: Sequence[Mapping[str, Any]], task: str, *, feature: str | None = None) -> list[str]:
    """Tags of `task` in a catalogue; with `feature`, only those whose option or stage features include it."""
    out: list[str] = []
    for stage in stages:
        if stage.get("task") != task:
            continue
        options = stage.get("configOptions", stage.get("config", []))
        stage_features = set(stage.get("features", []))
        for option in options:
            features = stage_features | set(option.get("features", []))
            if feature is None or feature in features:
                out.append(option["tag"])
    return out


@dataclass(frozen=True)
class Token:
    text: str
    start_offset_ms: int
    end_offset_ms: int
    # Written without a space before it (",", "."): the vendor's isLeftHanded; without one after: isRightHanded.
    left_handed: bool = False
    right_handed: bool = False


@dataclass(frozen=True)
class TextSegment:
    is_final: bool
    start_time_ms: int
    end_time_ms: int
    tokens: tuple[Token, ...]


@dataclass(frozen=True)
class Status:
    status: str
    session_id: int | None = None
    recording_id: int | None = None
    length_ms: int | None = None
    session_lock_key: str | None = None


@dataclass(frozen=True)
class WarningMessage:
    message: str


@dataclass(frozen=True)
class ErrorMessage:
    message: str


ServerMessage = Status | TextSegment | WarningMessage | ErrorMessage


def segment_of(hyp: Hypothesis, *, punctuate: bool = False) -> TextSegment:
    """A recognizer hypothesis as a textSegment; token offsets are relative to the segment start. A word that joins
    the previous one (",", ".") is left-handed, one that joins the next (an opening quote) right-handed, so
    tokensToText writes the text as the recognizer did. `punctuate` (the NLP_pc stage) capitalises a final and
    closes it with a period unless the recognizer punctuated it already."""
    tokens = [
        Token(
            w.text,
            max(0, w.start_ms - hyp.start_ms),
            max(0, w.end_ms - hyp.start_ms),
            left_handed=w.joins_previous,
            right_handed=w.joins_next,
        )
        for w in hyp.words
        if w.text
    ]
    punctuated = any(t.left_handed and not any(c.isalnum() for c in t.text) for t in tokens)
    if punctuate and hyp.is_final and tokens and not punctuated:
        first = tokens[0]
        tokens[0] = Token(first.text[:1].upper() + first.text[1:], first.start_offset_ms, first.end_offset_ms,
                          left_handed=first.left_handed, right_handed=first.right_handed)  # fmt: skip
        end = tokens[-1].end_offset_ms
        tokens.append(Token(".", end, end, left_handed=True))
    return TextSegment(hyp.is_final, hyp.start_ms, hyp.end_ms, tuple(tokens))


def _segment(segment: TextSegment) -> dict[str, Any]:
    return {
        "isFinal": segment.is_final,
        "startTimeMs": segment.start_time_ms,
        "endTimeMs": segment.end_time_ms,
        "tokens": [
            {
                "isLeftHanded": t.left_handed,
                "isRightHanded": t.right_handed,
                "startOffsetMs": t.start_offset_ms,
                "endOffsetMs": t.end_offset_ms,
                "text": t.text,
            }
            for t in segment.tokens
        ],
    }


@dataclass(frozen=True)
class Envelope:
    """The one serialiser of server messages: each typed message as the vendor's JSON, under the chosen envelope
    key."""

    key: EnvelopeKey = "type"

    def encode(self, message: ServerMessage) -> dict[str, Any]:
        if isinstance(message, Status):
            optional = {
                "sessionId": message.session_id,
                "recordingId": message.recording_id,
                "lengthMs": message.length_ms,
                "sessionLockKey": message.session_lock_key,
            }
            return {
                self.key: "STATUS",
                "status": message.status,
                **{k: v for k, v in optional.items() if v is not None},
            }
        if isinstance(message, TextSegment):
            return {self.key: "TEXT_SEGMENT", "textSegment": _segment(message)}
        if isinstance(message, WarningMessage):
            return {self.key: "WARNING", "message": message.message}
        return {
            self.key: "ERROR",
            "error": {"id": str(uuid.uuid4()), "timestamp": iso_now(), "message": message.message},
        }


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
