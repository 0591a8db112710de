"""The embedded offline engine (pocketsphinx), spoken to over the Truebar protocol on the app's own socket.

The page uses the same Truebar client for it: the grant has the Truebar shape, the app mints and checks the
short-lived token itself, and the stream endpoint (/api/local/stream) is the engine's own Truebar-protocol stream
server (server/engine/stream.py), which the Truebar emulator wraps with its faults, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from starlette.websockets import WebSocket

from server.engine.loader import load_engine
from server.engine.stream import deny, serve_stream
from server.engine.types import Recognizer
from server.providers.base import Grant, ProviderError, ProviderStatus, SessionRequest
from server.settings import Settings

LOCAL_TAG = "POCKETSPHINX:en-US:*:*"
SAMPLE_RATE = 16_000
FRAME_SAMPLES = 1_600  # 100 ms, as the Truebar guide's examples send


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LocalTokens:
    """Short-lived HMAC-signed tokens: `payload.signature`, payload = {sid, exp}. Checked when the socket opens."""

    def __init__(self, secret: str, ttl_s: float) -> None:
        self._key = hashlib.sha256(b"local-stream:" + secret.encode()).digest()
        self.ttl_s = ttl_s
        # Session ids whose token has opened a stream, until the token expires: a grant opens one stream, so one
        # client cannot take every decoder with one token (the page mints a new grant to reconnect).
        self._spent: dict[str, float] = {}

    def mint(self, session_id: str, now: float | None = None) -> tuple[str, float]:
        expires_at = (time.time() if now is None else now) + self.ttl_s
        payload = _b64(json.dumps({"sid": session_id, "exp": expires_at}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", expires_at

    def verify(self, token: str, now: float | None = None) -> dict[str, Any] | None:
        payload, _, mac = token.partition(".")
        # Compared as bytes: compare_digest refuses str with non-ASCII characters, and the token is the client's.
        if not payload or not mac or not hmac.compare_digest(mac.encode(), self._sign(payload).encode()):
            return None
        try:
            claims = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int | float):
            return None
        if claims["exp"] <= (time.time() if now is None else now):
            return None
        return claims

    def spend(self, claims: dict[str, Any], now: float | None = None) -> bool:
        """Mark a verified token used; False when it already was."""
        now = time.time() if now is None else now
        self._spent = {sid: exp for sid, exp in self._spent.items() if exp > now}
        sid = str(claims.get("sid"))
        if sid in self._spent:
            return False
        self._spent[sid] = float(claims["exp"])
        return True

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings, *, recognizer: Recognizer | None = None) -> None:
        self.settings = settings
        self.tokens = LocalTokens(settings.secret_key, settings.local_token_ttl_s)
        self._recognizer = recognizer
        self._owns_recognizer = False
        self._loading = asyncio.Lock()

    def status(self) -> ProviderStatus:
        enabled = self.settings.local.enabled
        return ProviderStatus(
            self.name,
            "Offline engine (pocketsphinx, on this machine)",
            configured=enabled,
            missing=() if enabled else ("LOCAL_ENGINE=1",),
            detail="US English; no account, no network: audio never leaves this machine.",
            offline=True,
        )

    def connect_origins(self) -> list[str]:
        return []  # the app's own origin, always allowed

    async def options(self) -> dict[str, Any]:
        return {"tags": [LOCAL_TAG], "default_tag": LOCAL_TAG}

    async def recognizer(self) -> Recognizer:
        """The engine, loaded once off the event loop (loading the model takes about a second)."""
        async with self._loading:
            if self._recognizer is None:
                try:
                    recognizer = await asyncio.to_thread(load_engine, self.settings.local.engine)
                    warm_up = getattr(recognizer, "warm_up", None)
                    if warm_up is not None:
                        # Start the worker processes and load the model now, not in the first session.
                        await warm_up()
                    self._recognizer = recognizer
                    self._owns_recognizer = True
                except Exception as exc:
                    raise ProviderError(
                        503, "engine_unavailable", f"The offline engine could not start: {type(exc).__name__}."
                    ) from exc
            return self._recognizer

    async def create_session(self, request: SessionRequest) -> Grant:
        if not self.settings.local.enabled:
            raise ProviderError(409, "not_configured", "The offline engine is switched off (LOCAL_ENGINE=0).")
        await self.recognizer()
        session_id = secrets.token_hex(8)
        token, expires_at = self.tokens.mint(session_id)
        return {
            "provider": self.name,
            "protocol": "truebar",
            "ws_url": f"{request.ws_origin}/api/local/stream",
            "token": token,
            "expires_at": expires_at,
            "sample_rate": SAMPLE_RATE,
            "frame_samples": FRAME_SAMPLES,
            "tag": LOCAL_TAG,
            "tags": [LOCAL_TAG],
            "session_id": session_id,
            "offline": True,
        }

    async def serve_stream(self, websocket: WebSocket) -> None:
        """WS /api/local/stream?access_token=…: the Truebar stream protocol over the embedded engine."""
        token = websocket.query_params.get("access_token", "")
        claims = self.tokens.verify(token) if token else None
        if claims is None or not self.settings.local.enabled or not self.tokens.spend(claims):
            await deny(websocket, 401)
            return
        try:
            recognizer = await self.recognizer()
        except ProviderError:
            await deny(websocket, 503)
            return
        await serve_stream(websocket, recognizer, tags=[LOCAL_TAG])

    async def end_session(self, session_id: str) -> None:
        return None  # nothing is held upstream: the socket's end frees the decoder

    async def aclose(self) -> None:
        """Stop the engine's worker processes (only an engine this provider loaded; an injected one is the
        caller's)."""
        aclose = getattr(self._recognizer, "aclose", None)
        if self._owns_recognizer and aclose is not None:
            await aclose()
        self._recognizer = None
