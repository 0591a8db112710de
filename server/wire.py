"""Typed wire models of the app's HTTP API, both ways: one serialiser (`dump`) for every answer, one parser for the
session request (`SessionBody.parse`), and the JSON Schemas the OpenAPI document is generated from (`schema_of`).

Dataclasses, not pydantic: the shapes are few and flat, the project's values are
already frozen dataclasses, mypy strict checks them exactly, and the app needs no new dependency for them. Constraints
the type cannot say (a pattern, an enum) ride along as `Annotated[..., Schema(...)]`, so the type stays the single
source of the document.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints

from server.errors import ApiError


class Schema:
    """JSON Schema keywords for one field (a description, a pattern, an enum...), merged into the generated one."""

    def __init__(self, description: str = "", **keywords: Any) -> None:
        self.keywords: dict[str, Any] = dict(keywords)
        if description:
            self.keywords["description"] = description


# --- the models ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorDetail:
    code: str
    message: str


@dataclass(frozen=True)
class Error:
    """Every error answer of the API (ApiError.to_json)."""

    error: ErrorDetail


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    label: str
    configured: bool
    # Environment variables that still have to be set (empty when configured).
    missing: Annotated[tuple[str, ...], Schema("Variables still to set.")] = ()
    detail: str = ""
    offline: bool = False


@dataclass(frozen=True)
class Providers:
    providers: list[ProviderStatus]
    default: Annotated[str | None, Schema("The provider the page selects first.")]


@dataclass(frozen=True)
class TagOptions:
    """Truebar and the offline engine: the ASR tags the page may offer."""

    tags: list[str]
    default_tag: str


@dataclass(frozen=True)
class DelayOptions:
    """Wiro: its transcription delay."""

    transcription_delay: str


ProviderOptions = TagOptions | DelayOptions


def seconds_left(at: float, now: float) -> float:
    """A grant's or a share's `expires_in`: the seconds from `now` until `at` (both on the clock that set `at`)."""
    return max(0.0, at - now)


@dataclass(frozen=True)
class Grant:
    """A short-lived grant: the browser opens `ws_url` with `token` and streams PCM16 mono at `sample_rate`,
    `frame_samples` per frame. Never holds a long-lived credential."""

    provider: str
    # The wire protocol the client speaks: the page has a client for each.
    protocol: Literal["truebar", "wiro"]
    ws_url: Annotated[str, Schema(pattern="^wss?://")]
    token: Annotated[str, Schema(minLength=1)]
    expires_at: Annotated[float, Schema("Unix seconds, on the server's clock.")]
    # What a browser goes by: its clock may be minutes off the server's, so it counts the grant's life from when the
    # grant arrived (a client given no expires_in, by an older server or another backend, compares expires_at).
    expires_in: Annotated[
        float,
        Schema(
            "Seconds of life the grant had left when it was minted: it runs out this long after it is received, "
            "whatever the receiver's clock says (expires_at is the same moment on the server's clock).",
            minimum=0,
        ),
    ]
    sample_rate: Annotated[int, Schema(enum=[16000, 24000])]
    frame_samples: Annotated[int, Schema(minimum=1)]
    # Names the session in POST /api/sessions/{provider}/{session_id}/end (never an upstream id).
    session_id: Annotated[str, Schema(minLength=1)]
    # Truebar's protocol: the ASR tag to configure (and, for the offline engine, the only ones it has).
    tag: str | None = None
    tags: list[str] | None = None
    # Wiro: the upstream task (for the page's records; ending goes by session_id).
    task_id: str | None = None
    offline: bool | None = None


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: Annotated[
        dict[str, str],
        Schema(
            "By name: each provider's own checks (the engine: ok, off, loading or failed: …) and the state "
            "store's (ok or unavailable: …).",
            required=["state"],
        ),
    ]


@dataclass(frozen=True)
class Health:
    ok: Literal[True] = True


@dataclass(frozen=True)
class Ended:
    ended: bool


@dataclass(frozen=True)
class SessionBody:
    """POST /api/sessions: the provider, and the provider's own options (for Truebar, `tag`), read by the provider."""

    provider: str
    tag: Annotated[str | None, Schema("Truebar: an ASR tag from the options listing.")] = None

    @classmethod
    def parse(cls, data: object) -> SessionBody:
        if not isinstance(data, dict):
            raise ApiError(400, "bad_json", "The request body must be a JSON object.")
        provider = data.get("provider")
        tag = data.get("tag")
        # Names that are not strings are unknown providers; a tag of another type is no tag (the provider's default).
        return cls(provider if isinstance(provider, str) else "", tag if isinstance(tag, str) else None)


# Shared captions (server/captions.py). A share id is 128 random bits, URL-safe base64 without padding.
SHARE_ID_PATTERN = "^[A-Za-z0-9_-]{22}$"
# A final or an interim is one line of speech: far below this. Longer text is refused, not cut.
CAPTION_TEXT_MAX = 2000
# Events per publish request (the page sends a few a second; a backlog after a drop is sent in such batches).
PUBLISH_EVENTS_MAX = 50
# The largest number a final may carry: the Redis store compares them in Lua, whose numbers are doubles, and above
# 2**53 two different numbers can be the same double (a final then looks like a retry and is silently dropped,
# where the memory store keeps it). It is also JavaScript's Number.MAX_SAFE_INTEGER, which the page counts in.
CAPTION_SEQ_MAX = 2**53 - 1
# A UTF-16 surrogate left alone in a decoded JSON string (json joins the halves of a pair): `\ud83d` from text cut
# inside an emoji. It is no character, UTF-8 cannot carry it (to Redis, to the viewers), and refusing the batch would
# hold every later final behind it, so it is shown as the replacement character instead.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


SHARE_EXPIRES_IN = (
    "Seconds the share had left when this answer was made: it ends this long after the answer is received, "
    "whatever the receiver's clock says (expires_at is the same moment on the server's clock)."
)


@dataclass(frozen=True)
class ShareGrant:
    """A new share. Viewers open `viewer_url`; the recording page publishes with `publish_token` (as
    `Authorization: Bearer …`), which also revokes the share. Only the page that created the share holds it."""

    share_id: Annotated[str, Schema(pattern=SHARE_ID_PATTERN)]
    viewer_url: Annotated[str, Schema("The viewer page's path on this app.", pattern="^/captions/")]
    publish_token: Annotated[str, Schema(minLength=20)]
    expires_at: Annotated[float, Schema("Unix seconds: now, until a recording starts.")]
    # A browser's clock may be minutes off the server's: it counts the share's life from when the answer arrived.
    expires_in: Annotated[float, Schema(SHARE_EXPIRES_IN, minimum=0)]
    deadline: Annotated[float, Schema("Unix seconds: the share never lives past this.")]
    max_viewers: Annotated[int, Schema(minimum=1)]


@dataclass(frozen=True)
class ShareStatus:
    """What anyone holding the link may know about a share."""

    status: Literal["active", "revoked"]
    live: Annotated[bool, Schema("A recording is being published now.")]
    expires_at: Annotated[float, Schema("Unix seconds.")]
    # A browser's clock may be minutes off the server's: it counts the share's life from when the answer arrived.
    expires_in: Annotated[float, Schema(SHARE_EXPIRES_IN, minimum=0)]
    viewers: Annotated[int, Schema(minimum=0)]
    max_viewers: Annotated[int, Schema(minimum=1)]


@dataclass(frozen=True)
class CaptionItem:
    """One caption event from the recording page: a final (numbered by the page, 1, 2, …, so a retried request adds
    nothing twice) or the line being recognised."""

    type: Literal["final", "partial"]
    text: Annotated[str, Schema(maxLength=CAPTION_TEXT_MAX)]
    seq: Annotated[
        int | None, Schema("Finals: the page's own number for it, increasing.", minimum=1, maximum=CAPTION_SEQ_MAX)
    ] = None


@dataclass(frozen=True)
class PublishBody:
    """POST /api/captions/{share_id}/events."""

    events: Annotated[list[CaptionItem], Schema(maxItems=PUBLISH_EVENTS_MAX)]
    live: Annotated[bool | None, Schema("true when a recording starts, false when it ends.")] = None

    @classmethod
    def parse(cls, data: object) -> PublishBody:
        def bad(message: str) -> ApiError:
            return ApiError(400, "bad_events", message)

        if not isinstance(data, dict):
            raise bad("The request body must be a JSON object.")
        raw_events = data.get("events", [])
        live = data.get("live")
        if not isinstance(raw_events, list) or len(raw_events) > PUBLISH_EVENTS_MAX:
            raise bad(f"events must be a list of at most {PUBLISH_EVENTS_MAX}.")
        if live is not None and not isinstance(live, bool):
            raise bad("live must be true or false.")
        events = []
        last_seq = 0
        for item in raw_events:
            if not isinstance(item, dict):
                raise bad("Each event must be an object.")
            kind, text, seq = item.get("type"), item.get("text"), item.get("seq")
            if kind not in ("final", "partial") or not isinstance(text, str) or len(text) > CAPTION_TEXT_MAX:
                raise bad(f"Each event needs a type (final or partial) and a text of at most {CAPTION_TEXT_MAX}.")
            text = _LONE_SURROGATE.sub("\ufffd", text)
            if kind == "final":
                if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= CAPTION_SEQ_MAX:
                    raise bad(f"Each final needs a seq: a whole number from 1 to {CAPTION_SEQ_MAX}.")
                if seq <= last_seq:
                    raise bad("Each final needs a seq: a whole number above the previous final's.")
                last_seq = seq
                events.append(CaptionItem("final", text, seq))
            else:
                events.append(CaptionItem("partial", text))
        return cls(events, live)


@dataclass(frozen=True)
class PublishResult:
    seq: Annotated[int, Schema("The share's last final number (the viewers' event id).", minimum=0)]
    viewers: Annotated[int, Schema(minimum=0)]
    expires_at: Annotated[float, Schema("Unix seconds.")]
    # A browser's clock may be minutes off the server's: it counts the share's life from when the answer arrived.
    expires_in: Annotated[float, Schema(SHARE_EXPIRES_IN, minimum=0)]
    live: bool


# The data of a viewer stream's `gap` event (GET /api/captions/{share_id}/stream): the finals numbered `from` to `to`
# (both included) are no longer kept for catch-up, so a viewer resuming after `from - 1` never gets them and says
# so. Written as a TypedDict call because `from` is a Python keyword.
CaptionGap = TypedDict(
    "CaptionGap",
    {
        "from": Annotated[int, Schema("The first final missed.", minimum=1, maximum=CAPTION_SEQ_MAX)],
        "to": Annotated[int, Schema("The last final missed.", minimum=1, maximum=CAPTION_SEQ_MAX)],
    },
)


def caption_after(raw: str | None) -> int | None:
    """A viewer's place in a share's finals, from Last-Event-ID or `?after=`: the number of its last final, 0 when
    absent, None when not a whole number from 0 to CAPTION_SEQ_MAX. ASCII digits only: str.isdigit() is true of
    "²" (a header's Latin-1 byte 0xB2), which int() refuses."""
    text = (raw or "").strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(CAPTION_SEQ_MAX))):
        return None
    after = int(text)
    return after if after <= CAPTION_SEQ_MAX else None


@dataclass(frozen=True)
class Revoked:
    revoked: Annotated[bool, Schema("false when the share had already ended.")]


# --- one serialiser --------------------------------------------------------------------------------------------


def dump(value: Any) -> Any:
    """A model as JSON-ready data: dataclasses as objects (an optional field left at None is left out), tuples
    as lists; mappings and lists item by item."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.default is None:
                continue
            out[f.name] = dump(item)
        return out
    if isinstance(value, Mapping):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    return value


# --- JSON Schema from the types --------------------------------------------------------------------------------

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def schema_of(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of `tp`; a dataclass or TypedDict becomes a $ref, its own schema added to `components`."""
    if get_origin(tp) is Annotated:
        inner, *extras = get_args(tp)
        out = dict(schema_of(inner, components))
        for extra in extras:
            if isinstance(extra, Schema):
                out.update(extra.keywords)
        return out
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = get_origin(tp)
    if origin is Literal:
        values = list(get_args(tp))
        out = {"const": values[0]} if len(values) == 1 else {"enum": values}
        kinds = {type(v) for v in values}
        return {"type": _SCALARS[kinds.pop()]["type"], **out} if len(kinds) == 1 and len(values) > 1 else out
    if origin in (Union, types.UnionType):
        members = [schema_of(a, components) for a in get_args(tp)]
        simple = [m.get("type") for m in members]
        if all(isinstance(t, str) and len(m) == 1 for t, m in zip(simple, members, strict=True)):
            return {"type": simple}
        return {"anyOf": members}
    if origin in (list, tuple):
        return {"type": "array", "items": schema_of(get_args(tp)[0], components)}
    if origin in (dict, Mapping):
        return {"type": "object", "additionalProperties": schema_of(get_args(tp)[1], components)}
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or hasattr(tp, "__required_keys__")):
        name = tp.__name__
        if name not in components:
            components[name] = {}  # placeholder: a model that refers to itself
            components[name] = _object_schema(tp, components)
        return {"$ref": f"#/components/schemas/{name}"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _without_none(hint: Any) -> Any:
    """`X | None` as `X` (inside Annotated too): an optional field is left out rather than sent as null."""
    if get_origin(hint) is Annotated:
        inner, *extras = get_args(hint)
        return Annotated[(_without_none(inner), *extras)]
    if get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
    return hint


def _object_schema(tp: type, components: dict[str, Any]) -> dict[str, Any]:
    """Required: what `dump` always writes (a dataclass field unless it defaults to None; a TypedDict key unless
    NotRequired). An optional field is absent rather than null, so its schema does not allow null."""
    hints = get_type_hints(tp, include_extras=True)
    optional: set[str] = set()
    if dataclasses.is_dataclass(tp):
        fields = dataclasses.fields(tp)
        names = [f.name for f in fields]
        optional = {f.name for f in fields if f.default is None}
        required = [f.name for f in fields if f.name not in optional]
    else:
        names = list(hints)
        required = [n for n in names if get_origin(hints[n]) is not NotRequired]
    properties = {}
    for n in names:
        hint = hints[n]
        if get_origin(hint) is NotRequired:
            hint = get_args(hint)[0]
        properties[n] = schema_of(_without_none(hint) if n in optional else hint, components)
    out: dict[str, Any] = {"type": "object"}
    doc = (tp.__doc__ or "").strip()
    if doc and not doc.startswith(tp.__name__ + "("):  # a dataclass's generated docstring says nothing
        out["description"] = " ".join(doc.split())
    if required:
        out["required"] = required
    out["properties"] = properties
    return out
