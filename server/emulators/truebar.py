"""Truebar emulator: the Keycloak token endpoint, the stage listing and the realtime stream, one Starlette app.

Written from ../shared/specs/truebar.md, never from server.providers, so a client bug cannot be mirrored here.

    python -m server.emulators truebar --host 127.0.0.1 --port 8091 [--recognizer scripted]

Default credentials: username ``demo``, password ``demo``, client id ``truebar-client`` (realm ``truebar``).
Port 0 picks a free port; the printed lines show the real URLs as TRUEBAR_* variables.

The stream protocol itself is the embedded engine's stream server (server/transport.py), which the app serves
too; this module plugs into it (a StreamObserver) fault injection and records of what each connection did.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from server import UVICORN_HTTP
from server.emulators.scripted import ScriptedRecognizer, load_recognizer
from server.engine.types import Recognizer
from server.protocols.truebar import (
    ASR_TASK,
    PUNCTUATION_TASK,
    Config,
    EnvelopeKey,
    WarningMessage,
    bearer_token,
    stage_tags,
)
from server.transport import (
    CLOSE_INTERNAL,
    ReceiveLimit,
    StreamFailure,
    StreamObserver,
    StreamStop,
    TruebarStream,
    deny,
)

logger = logging.getLogger(__name__)

DEFAULT_USERNAME = "demo"
DEFAULT_PASSWORD = "demo"
DEFAULT_CLIENT_ID = "truebar-client"
DEFAULT_REALM = "truebar"
DEFAULT_PORT = 8091


@dataclass(frozen=True)
class StreamOptions:
    """Behaviours the spec leaves open, and faults to inject. Frame counts count binary audio frames."""

    envelope_key: EnvelopeKey = "type"
    # Close with an ERROR when the token's exp passes while the socket is open (else checked on upgrade only).
    expire_mid_session: bool = False
    # Drop the TCP connection without a close frame after this many audio frames.
    drop_after_frames: int | None = None
    error_after_frames: int | None = None
    warning_after_frames: int | None = None
    # Seconds between the last finals after EOS and STATUS FINISHED.
    finished_delay_s: float = 0.0
    # Seconds between CONFIG and STATUS CONFIGURED (audio sent meanwhile is still valid).
    configured_delay_s: float = 0.0
    # The close code after every ERROR: the spec leaves them unknown. None keeps the stream server's own (1008 for
    # bad input, 1011 for a failure inside, 1013 when busy).
    error_close_code: int | None = None
    # Fault after EOS, between the last finals and STATUS FINISHED (where a client waits with a timeout): "drop"
    # the connection (1006) or end with an "error".
    fail_at_finish: Literal["drop", "error"] | None = None
    # The faults above (drop, error, warning, mid-session expiry) hit only the first N connections; None: all.
    # A client's reconnect can then be seen to succeed.
    faulty_sessions: int | None = None

    def __post_init__(self) -> None:
        # Only codes a server may send: others (1005, 1006, 999) cannot be put in a close frame, and the ERROR would
        # then be followed by a dropped connection instead.
        code = self.error_close_code
        if code is not None and not (code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999):
            raise ValueError(f"error_close_code {code} is not a close code a server may send")

    def for_connection(self, index: int) -> StreamOptions:
        """The options for the `index`-th connection (0-based), with faults removed past `faulty_sessions`."""
        if self.faulty_sessions is None or index < self.faulty_sessions:
            return self
        return replace(
            self,
            drop_after_frames=None,
            error_after_frames=None,
            warning_after_frames=None,
            expire_mid_session=False,
            fail_at_finish=None,
        )


@dataclass(frozen=True)
class TruebarEmulatorOptions:
    username: str = DEFAULT_USERNAME
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    client_id: str = DEFAULT_CLIENT_ID
    realm: str = DEFAULT_REALM
    # Seconds; production access tokens live about 900 s.
    token_ttl_s: int = 900
    refresh_ttl_s: int = 1800
    # HS256 key for the tokens; empty means random per app.
    signing_key: str = field(default="", repr=False)
    stream: StreamOptions = StreamOptions()


@dataclass
class SessionRecord:
    """What one WebSocket connection received and sent, for tests. `ended` is set when the handler returns."""

    token_source: str = ""
    pcm: bytearray = field(default_factory=bytearray)
    frames: int = 0
    received: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # OPEN, FINISHED, CANCELED (client closed mid-session), DISCONNECTED (closed while idle), ERROR, DROPPED.
    outcome: str = "OPEN"
    close_code: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    # Keep the audio and messages (tests read them); off where the protocol serves real use (the local engine),
    # which would otherwise hold every byte of a long session in memory.
    keep: bool = True

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type", m.get("messageType")) == kind]


async def serve_stream(
    websocket: WebSocket,
    recognizer: Recognizer,
    options: StreamOptions,
    record: SessionRecord | None = None,
    *,
    token_expires_at: float | None = None,
    tags: Collection[str],
    punctuation_tags: Collection[str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Speak the Truebar stream protocol, with `options`' faults, on an authenticated, not yet accepted WebSocket
    until it ends, writing what happened into `record`. Never raises for anything the client does. The injected
    delays (configured_delay_s, finished_delay_s) wait through `sleep`, so a test can see them without a clock."""
    record = record or SessionRecord(keep=False)
    expires_at = token_expires_at if options.expire_mid_session else None
    limit = ReceiveLimit(lambda: expires_at) if expires_at is not None else None
    if punctuation_tags is None:
        punctuation_tags = stage_tags(default_stages(), PUNCTUATION_TASK)
    stream = TruebarStream(
        websocket,
        recognizer,
        tags=tags,
        envelope_key=options.envelope_key,
        punctuation_tags=punctuation_tags,
        limit=limit,
        observer=_Faults(options, record, sleep),
    )
    await stream.run()


class _Faults(StreamObserver):
    """The emulator's part of a stream: its records, and the faults `options` inject."""

    def __init__(self, options: StreamOptions, record: SessionRecord, sleep: Callable[[float], Awaitable[None]]):
        self.options = options
        self.record = record
        self.sleep = sleep

    async def audio(self, stream: TruebarStream, data: bytes) -> None:
        record, o = self.record, self.options
        record.frames += 1
        if record.keep:
            record.pcm += data
        if o.drop_after_frames is not None and record.frames >= o.drop_after_frames:
            # Returning without a close frame makes the server drop the TCP connection (the client sees 1006).
            raise StreamStop("DROPPED")
        if o.error_after_frames is not None and record.frames >= o.error_after_frames:
            raise StreamFailure("Injected fault: the ASR stage failed.", CLOSE_INTERNAL)
        if o.warning_after_frames is not None and record.frames == o.warning_after_frames:
            await stream.send(WarningMessage("Injected warning: audio quality is low."))

    async def configured(self, stream: TruebarStream) -> None:
        if self.options.configured_delay_s > 0:
            await self.sleep(self.options.configured_delay_s)

    async def finishing(self, stream: TruebarStream) -> None:
        if self.options.finished_delay_s > 0:
            await self.sleep(self.options.finished_delay_s)
        if self.options.fail_at_finish == "drop":
            raise StreamStop("DROPPED")
        if self.options.fail_at_finish == "error":
            raise StreamFailure("Injected fault: the session could not be finished.", CLOSE_INTERNAL)

    def close_code(self, code: int) -> int:
        return code if self.options.error_close_code is None else self.options.error_close_code

    def sent(self, message: dict[str, Any]) -> None:
        if self.record.keep:
            self.record.sent.append(message)

    def received(self, text: str) -> None:
        if self.record.keep:
            self.record.received.append(text)

    def config(self, config: Config) -> None:
        self.record.configs.append(config)

    def error(self, message: str) -> None:
        self.record.errors.append(message)

    async def ended(self, stream: TruebarStream) -> None:
        self.record.outcome = stream.outcome
        self.record.close_code = stream.close_code
        self.record.ended.set()


# The stage catalogue this emulator lists (its punctuator is the one the app's engine honours too).


def default_stages() -> list[dict[str, Any]]:
    """The stage catalogue GET /api/pipelines/stages returns: both list spellings, one batch-only ASR tag."""
    return [
        {
            "task": ASR_TASK,
            "type": "ASR",
            "configOptions": [
                {"tag": "KALDI:en-US:*:*", "features": ["onlineAsr", "offlineAsr"]},
                {"tag": "KALDI:sl-SI:COL:20221208-0800", "features": ["onlineAsr", "offlineAsr"]},
                {"tag": "NEMO_ASR:en-US:*:*", "features": ["offlineAsr"]},
            ],
        },
        # Older API versions: `config` instead of `configOptions`, features at stage level.
        {"task": ASR_TASK, "type": "ASR", "features": ["onlineAsr"], "config": [{"tag": "RIVA:en-US:*:*"}]},
        {
            "task": PUNCTUATION_TASK,
            "type": "NLP",
            "configOptions": [{"tag": "NEMO_PUNCTUATOR:en-US:*:*", "features": ["enableSplitToSentences"]}],
        },
    ]


# Keycloak-style tokens: HS256 JWTs signed by hand.


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_jwt(claims: Mapping[str, Any], key: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def decode_jwt(token: str, key: bytes, *, now: float) -> dict[str, Any] | None:
    """The claims of a token this emulator signed and that has not expired, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, payload, signature = parts
    expected = hmac.new(key, f"{header}.{payload}".encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64(expected).encode(), signature.encode("ascii", "replace")):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= now:
        return None
    return claims


@dataclass
class EmulatorState:
    sessions: list[SessionRecord] = field(default_factory=list)
    # Token endpoint requests by grant_type ("" when missing), so tests can check a client's caching.
    token_requests: Counter[str] = field(default_factory=Counter)


class TruebarEmulator:
    def __init__(
        self,
        options: TruebarEmulatorOptions,
        recognizer: Recognizer,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.options = options
        self.recognizer = recognizer
        self.sleep = sleep
        self.key = options.signing_key.encode() if options.signing_key else secrets.token_bytes(32)
        self.state = EmulatorState()
        self.stages = default_stages()
        self.online_tags = tuple(stage_tags(self.stages, ASR_TASK, feature="onlineAsr"))
        self.punctuation_tags = tuple(stage_tags(self.stages, PUNCTUATION_TASK))

    def _tokens(self, request: Request, subject: str, session_state: str) -> dict[str, Any]:
        now = int(time.time())
        o = self.options
        issuer = f"{str(request.base_url).rstrip('/')}/realms/{o.realm}"
        common = {"iat": now, "iss": issuer, "sub": subject, "azp": o.client_id, "session_state": session_state}
        access = {
            **common,
            "exp": now + o.token_ttl_s,
            "jti": str(uuid.uuid4()),
            "typ": "Bearer",
            "preferred_username": o.username,
            "scope": "profile email",
        }
        refresh = {**common, "exp": now + o.refresh_ttl_s, "jti": str(uuid.uuid4()), "typ": "Refresh"}
        return {
            "access_token": encode_jwt(access, self.key),
            "expires_in": o.token_ttl_s,
            "refresh_expires_in": o.refresh_ttl_s,
            "refresh_token": encode_jwt(refresh, self.key),
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session_state,
            "scope": "profile email",
        }

    def verify_access(self, token: str) -> dict[str, Any] | None:
        claims = decode_jwt(token, self.key, now=time.time())
        if claims is None or claims.get("typ") != "Bearer":
            return None
        return claims

    async def token(self, request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(body, keep_blank_values=True))
        grant = form.get("grant_type", "")
        self.state.token_requests[grant] += 1
        o = self.options
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}

        def error(status: int, code: str, description: str) -> Response:
            return JSONResponse({"error": code, "error_description": description}, status, headers=headers)

        if request.path_params["realm"] != o.realm:
            return JSONResponse({"error": "Realm does not exist"}, 404)
        if form.get("client_id") != o.client_id:
            return error(401, "invalid_client", "Invalid client or Invalid client credentials")
        if grant == "password":
            user_ok = hmac.compare_digest(form.get("username", "").encode(), o.username.encode())
            pass_ok = hmac.compare_digest(form.get("password", "").encode(), o.password.encode())
            if not (user_ok and pass_ok):
                return error(401, "invalid_grant", "Invalid user credentials")
            return JSONResponse(self._tokens(request, str(uuid.uuid4()), str(uuid.uuid4())), headers=headers)
        if grant == "refresh_token":
            claims = decode_jwt(form.get("refresh_token", ""), self.key, now=time.time())
            if claims is None or claims.get("typ") != "Refresh" or claims.get("azp") != o.client_id:
                return error(400, "invalid_grant", "Token is not active")
            tokens = self._tokens(request, str(claims["sub"]), str(claims["session_state"]))
            return JSONResponse(tokens, headers=headers)
        return error(400, "unsupported_grant_type", "Unsupported grant_type")

    async def list_stages(self, request: Request) -> Response:
        found = bearer_token(request.headers, request.query_params)
        if found is None or self.verify_access(found[0]) is None:
            return JSONResponse(
                {"error": "unauthorized", "message": "A valid access token is required."},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(self.stages)

    async def stream(self, websocket: WebSocket) -> None:
        found = bearer_token(websocket.headers, websocket.query_params)
        claims = self.verify_access(found[0]) if found else None
        if found is None or claims is None:
            await deny(websocket, 401)
            return
        record = SessionRecord(token_source=found[1])
        options = self.options.stream.for_connection(len(self.state.sessions))
        self.state.sessions.append(record)
        await serve_stream(
            websocket,
            self.recognizer,
            options,
            record,
            token_expires_at=float(claims["exp"]),
            tags=self.online_tags,
            punctuation_tags=self.punctuation_tags,
            sleep=self.sleep,
        )


def create_emulator(
    options: TruebarEmulatorOptions | None = None,
    recognizer: Recognizer | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Starlette:
    """The emulator app. `app.state.sessions` and `app.state.token_requests` are for tests to inspect; `sleep` is
    what the injected delays wait with (a test's own, to see them without a clock)."""
    emulator = TruebarEmulator(options or TruebarEmulatorOptions(), recognizer or ScriptedRecognizer(), sleep)
    token_path = "/realms/{realm}/protocol/openid-connect/token"
    routes = [
        Route(token_path, emulator.token, methods=["POST"]),
        Route("/auth" + token_path, emulator.token, methods=["POST"]),
        Route("/api/pipelines/stages", emulator.list_stages, methods=["GET"]),
        WebSocketRoute("/api/pipelines/stream", emulator.stream),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    app.state.sessions = emulator.state.sessions
    app.state.token_requests = emulator.state.token_requests
    return app


def urls(host: str, port: int, realm: str = DEFAULT_REALM) -> dict[str, str]:
    """The TRUEBAR_* variables a client needs to reach an emulator at host:port."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "TRUEBAR_AUTH_URL": f"http://{netloc}/realms/{realm}/protocol/openid-connect/token",
        "TRUEBAR_API_BASE_URL": f"http://{netloc}",
        "TRUEBAR_STT_WS_URL": f"ws://{netloc}/api/pipelines/stream",
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server.emulators truebar",
        description="Run the Truebar emulator (token endpoint, stage listing, realtime stream).",
        epilog=f"Default credentials: --username {DEFAULT_USERNAME} --password {DEFAULT_PASSWORD}, "
        f"client id {DEFAULT_CLIENT_ID}. --port 0 picks a free port.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--realm", default=DEFAULT_REALM)
    parser.add_argument("--recognizer", choices=["pocketsphinx", "two-pass", "scripted"], default="pocketsphinx")
    parser.add_argument("--token-ttl", type=int, default=900, help="access token lifetime, seconds")
    parser.add_argument("--refresh-ttl", type=int, default=1800, help="refresh token lifetime, seconds")
    parser.add_argument("--envelope", choices=["type", "messageType"], default="type")
    parser.add_argument("--expire-mid-session", action="store_true", help="end streams at token expiry")
    parser.add_argument("--drop-after-frames", type=int, default=None)
    parser.add_argument("--error-after-frames", type=int, default=None)
    parser.add_argument("--warning-after-frames", type=int, default=None)
    parser.add_argument("--finished-delay", type=float, default=0.0, help="seconds before STATUS FINISHED")
    parser.add_argument("--configured-delay", type=float, default=0.0, help="seconds before CONFIGURED")
    parser.add_argument("--error-close-code", type=int, default=None, help="close code after every ERROR")
    parser.add_argument("--fail-at-finish", choices=["drop", "error"], default=None, help="fault after EOS")
    parser.add_argument("--faulty-sessions", type=int, default=None, help="the faults hit only the first N streams")
    parser.add_argument("--log-level", default="info")
    return parser


def _load(name: str, loader: Callable[[str], Recognizer]) -> Recognizer:
    """The recognizer `loader` gives for `name`, or the scripted one when it cannot load."""
    try:
        return loader(name)
    except (ImportError, OSError, RuntimeError) as exc:
        print(
            f"The {name} recognizer is unavailable ({exc}); using the scripted recognizer instead.",
            file=sys.stderr,
            flush=True,
        )
        return ScriptedRecognizer()


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = _parser().parse_args(argv)
    options = TruebarEmulatorOptions(
        username=args.username,
        password=args.password,
        client_id=args.client_id,
        realm=args.realm,
        token_ttl_s=args.token_ttl,
        refresh_ttl_s=args.refresh_ttl,
        stream=StreamOptions(
            envelope_key=args.envelope,
            expire_mid_session=args.expire_mid_session,
            drop_after_frames=args.drop_after_frames,
            error_after_frames=args.error_after_frames,
            warning_after_frames=args.warning_after_frames,
            finished_delay_s=args.finished_delay,
            configured_delay_s=args.configured_delay,
            error_close_code=args.error_close_code,
            fail_at_finish=args.fail_at_finish,
            faulty_sessions=args.faulty_sessions,
        ),
    )
    recognizer = _load(args.recognizer, load_recognizer)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        sock.close()
        return 1
    port = sock.getsockname()[1]
    print(
        f"Truebar emulator (recognizer: {recognizer.name}); credentials {args.username} / {args.password}, "
        f"client id {args.client_id}",
        flush=True,
    )
    for name, value in urls(args.host, port, args.realm).items():
        print(f"{name}={value}", flush=True)
    config = uvicorn.Config(
        create_emulator(options, recognizer),
        log_level=args.log_level,
        http=UVICORN_HTTP,
        ws="websockets-sansio",
        lifespan="off",
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
