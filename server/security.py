"""Origin checks, rate limits, the access password, security headers and log redaction.

POST /api/sessions mints credentials that cost money (a Wiro task) or grant access (a Truebar token), so only the
app's own page may call it: no other site, no simple form (CSRF), not too often, not too many at once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeSerializer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import Settings, SettingsError

COOKIE_NAME = "stt_auth"
# Query parameters that carry credentials: redacted from every log line.
SECRET_PARAMS = (
    "access_token",
    "token",
    "tasktoken",
    "socketaccesstoken",
    "refresh_token",
    "password",
    "key",
    # The login cookie: websockets logs each handshake header at debug, `cookie: stt_auth=...`.
    COOKIE_NAME,
)


def _spelled_any_way(name: str) -> str:
    """A pattern for `name` however a query string may spell it: each character as itself or percent-encoded.

    The app decodes parameter names before it looks them up (Starlette reads `?access%5Ftoken=` as `access_token`),
    so a redaction that matched only the literal spelling would leave a grant the app accepts whole in the access
    log. Percent-encoding is the only other spelling: `+` decodes to a space, and the UTF-8 decoder refuses overlong
    forms of ASCII. Under (?i) a letter matches either case, and `%5f` matches `%5F`.
    """

    def spellings(c: str) -> str:
        encoded = sorted({f"%{ord(v):02x}" for v in (c.lower(), c.upper())})
        return "(?:" + "|".join([re.escape(c), *encoded]) + ")"

    return "".join(spellings(c) for c in name)


# (?<!\w) is `\b` before a name that starts with a letter, and holds as well before one that starts with a `%`.
_SECRET_QUERY = re.compile(
    r"(?i)(?<!\w)(" + "|".join(_spelled_any_way(name) for name in SECRET_PARAMS) + r")=([^&;\s\"']+)"
)
# Credentials in an Authorization header's value (`Bearer <token>`): websockets logs the handshake's headers at debug
# as `< authorization: Bearer ...`, the value an argument of its own, with no name= before it. Only a whole
# argument that is such a value, or the text after an `authorization:`, so ordinary words ("the basic idea") stay.
_AUTH_SCHEME = re.compile(r"(?i)(^|authorization:\s*)(bearer|basic|digest)(\s+)[^\s,;\"']+")
# A captions share id is the viewers' capability (whoever has it watches): uvicorn's access log must not show it.
_SHARE_PATH = re.compile(r"(/captions/)[A-Za-z0-9_-]{22}")


def redact(text: str) -> str:
    """Replace the values of credential-bearing query parameters and cookies, the credentials of an Authorization
    header, and captions share ids, with '***'."""
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)
    return _SHARE_PATH.sub(r"\1***", _AUTH_SCHEME.sub(r"\1\2\3***", text))


def _redacted_arg(arg: object) -> object:
    """A log argument with its credentials redacted. Not only strings: httpx logs each request's URL as an
    httpx.URL, which `%s` turns into the URL, query string and all."""
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, (bool, int, float, bytes)):
        return arg
    text = str(arg)
    redacted = redact(text)
    return arg if redacted == text else redacted


class RedactingFilter(logging.Filter):
    """Redacts tokens from a log record's message and arguments (uvicorn logs WebSocket paths with their query
    string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            # In place, so formatters that read the arguments (uvicorn's access log) still find them.
            record.args = tuple(_redacted_arg(a) for a in record.args)
        if isinstance(record.msg, str) and redact(record.msg) != record.msg:
            # The secret's name is in the format string (`token=%s`): redact the formatted line, or a placeholder
            # would be swallowed and the arguments no longer fit.
            try:
                record.msg = redact(record.getMessage())
                record.args = ()
            except (TypeError, ValueError, KeyError):
                record.msg = redact(record.msg)
        return True


_REDACTOR = RedactingFilter()


def install_log_redaction() -> None:
    """Redact every record as it is made, whatever logger makes it and whatever handler gets it.

    A filter on a logger sees only the records logged on that very logger (not its children's, not `wiro`'s), and a
    filter on handlers misses handlers added later (uvicorn's, a test's capture); the record factory is the one
    place every record passes through. Idempotent.
    """
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _REDACTOR.filter(record)
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


def is_loopback(host: str) -> bool:
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def own_origin(scope: Scope) -> str:
    headers = Headers(scope=scope)
    scheme = scope.get("scheme", "http")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{headers.get('host', '')}"


def cross_site_reason(scope: Scope) -> str | None:
    """Why a state-changing request is not from the app's own page, or None when it is.

    Sec-Fetch-Site is set by the browser itself (a page cannot forge it); Origin is checked too, for browsers without
    it. Firefox sends `Origin: null` on a sendBeacon fired while the page unloads, with Sec-Fetch-Site: same-origin:
    that pair is the app's own page. Clients that send neither header (curl, servers) are not browsers riding on a
    user's cookies, so they pass here and meet the other checks (JSON, rate limit, password).
    """
    headers = Headers(scope=scope)
    site = headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return f"{site} request"
    origin = headers.get("origin")
    if origin is None or origin == own_origin(scope):
        return None
    if origin == "null" and site == "same-origin":
        return None
    return "foreign origin"


def signed(secret: str, purpose: str) -> URLSafeSerializer:
    """A URL-safe signed JSON serializer (itsdangerous, HMAC-SHA256) for one purpose: the salt keeps a value
    signed for one purpose (a login cookie) from passing as another (a stream token)."""
    return URLSafeSerializer(secret, salt=purpose, signer_kwargs={"digest_method": hashlib.sha256})


def load_signed(serializer: URLSafeSerializer, value: str) -> Any:
    """What `value` carries, or None: unsigned, tampered with, or not exactly as it was signed (base64 decoding
    would let padding or stray characters appended to a valid value through, and each must be refused)."""
    try:
        claims = serializer.loads(value)
    except BadData:
        return None
    return claims if serializer.dumps(claims) == value else None


def login_key(secret_key: str, password: str) -> str:
    """What login cookies are signed with: the app's secret bound to the password (HMAC-SHA256), so that a new
    APP_PASSWORD ends every login made with the old one while APP_SECRET_KEY, which several workers or replicas
    must share, stays the same. The password itself is in no cookie."""
    return hmac.new(secret_key.encode(), b"login\0" + password.encode(), hashlib.sha256).hexdigest()


def make_auth_cookie(secret: str, ttl_s: float, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    return signed(secret, "auth-cookie").dumps({"exp": expires})


def check_auth_cookie(secret: str, value: str | None, now: float | None = None) -> bool:
    claims = load_signed(signed(secret, "auth-cookie"), value) if value else None
    expires = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(expires, int) or isinstance(expires, bool):
        return False
    return expires > (time.time() if now is None else now)


def content_security_policy(scope: Scope, connect_origins: Iterable[str]) -> str:
    """script-src 'self' only (no inline, no blob: worklets); connect-src the app and the providers in use."""
    headers = Headers(scope=scope)
    host = headers.get("host", "")
    secure = scope.get("scheme") in {"https", "wss"}
    # 'self' covers same-host ws: in current browsers, but say it outright for older ones.
    own_ws = f"{'wss' if secure else 'ws'}://{host}" if host else ""
    connect = " ".join(dict.fromkeys(["'self'", own_ws, *connect_origins]).keys()).strip()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob:",
            f"connect-src {connect}",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, connect_origins: Callable[[], Iterable[str]]) -> None:
        self.app = app
        self.connect_origins = connect_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = content_security_policy(scope, self.connect_origins())
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                extra = {
                    b"content-security-policy": csp.encode(),
                    b"x-content-type-options": b"nosniff",
                    # The Truebar token rides in a WebSocket URL: never leak URLs to other sites.
                    b"referrer-policy": b"no-referrer",
                    b"permissions-policy": b"microphone=(self), camera=(), geolocation=()",
                    b"x-frame-options": b"DENY",
                    b"cross-origin-opener-policy": b"same-origin",
                }
                if https:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                present = {k.lower() for k, _ in raw}
                raw.extend((k, v) for k, v in extra.items() if k not in present)
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

PUBLIC_NEEDS_HOSTS = (
    "APP_ALLOW_PUBLIC (--allow-public) without APP_PASSWORD needs APP_ALLOWED_HOSTS: the host name(s) the "
    "authenticating proxy serves this app under, comma-separated. Without a password nothing but the Host header "
    "tells the app's own page from a DNS-rebinding one (evil.example re-pointed at this app is same-origin with "
    "itself), and such a page in any browser that can reach this port directly could mint grants past the proxy."
)


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """Host names the app answers to; None for any.

    An app without a password is protected from other sites only by the browser's same-origin rule, and DNS
    rebinding defeats that: evil.example re-pointed at the app is "same-origin" with itself. So a loopback app
    answers only to loopback names (and the address it was told to bind), and one that listens publicly behind an
    authenticating proxy (allow_public_without_password) only to the names APP_ALLOWED_HOSTS lists, which it must
    (SettingsError): the proxy forwards its public name, which the app cannot guess. An app behind a password is
    safe from rebinding (its SameSite=Strict cookie is bound to the real host), so it answers to any name unless
    APP_ALLOWED_HOSTS lists them.
    """
    if settings.allowed_hosts:
        return LOOPBACK_NAMES | {h.lower() for h in settings.allowed_hosts}
    if settings.app_password:
        return None
    if settings.allow_public_without_password:
        raise SettingsError(PUBLIC_NEEDS_HOSTS)
    return LOOPBACK_NAMES | ({settings.host.lower()} if settings.host not in {"", "0.0.0.0", "::"} else set())


class HostGuardMiddleware:
    """Refuses requests and sockets whose Host header names a host this app does not answer to."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed is None or scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        raw = Headers(scope=scope).get("host", "")
        try:
            host = urlsplit("//" + raw).hostname or ""
        except ValueError:
            host = ""
        if host in self.allowed:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "unknown host"})
            return
        body = b"Unknown host: open this app by the address it listens on (for example http://127.0.0.1:8000/)."
        await _respond(send, 400, body, [(b"content-type", b"text/plain; charset=utf-8")])


class PasswordGateMiddleware:
    """With APP_PASSWORD set, everything but the login page and its stylesheet needs the signed cookie (the
    exceptions: a captions link's viewer, and a share's publish and end with its token)."""

    OPEN_PATHS = ("/login", "/static/app.css", "/healthz", "/readyz")
    # The login page's stylesheet under its versioned URL: /static/v/<version>/app.css. And a captions link's viewer
    # (a room screen, an OBS source, a phone has no login): the link itself is the capability, so its page, its
    # status and stream (GET only: the server's methods check the rest) and the viewer's own static files.
    OPEN_VERSIONED = re.compile(
        r"/static/v/[0-9a-f]{1,64}/app\.css"
        r"|(/static(/v/[0-9a-f]{1,64})?/captions/[a-z-]+\.(js|css))"
        r"|/captions/[A-Za-z0-9_-]{22}"
        r"|/api/captions/[A-Za-z0-9_-]{22}(/stream)?"
    )

    # A share's publish and its end, when they carry a bearer token. A share outlives the login that made it (a
    # share of up to 4 h, a login cookie of 12 h lapsing midway), and its page keeps publishing; the publish token it
    # holds is its authority, and the routes check it against the share (403 without the right one, 404 for no
    # share). Nothing else: these two neither make a share nor read anything, and cost a caller without the token
    # one read of the share, as the open status route does.
    BEARER_ROUTES = (
        ("POST", re.compile(r"/api/captions/[A-Za-z0-9_-]{22}/events")),
        ("DELETE", re.compile(r"/api/captions/[A-Za-z0-9_-]{22}")),
    )

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    @classmethod
    def bearer_route(cls, scope: Scope) -> bool:
        """A share's publish or end carrying a bearer token (which its route checks)."""
        if scope["type"] != "http":
            return False
        method, path = scope.get("method"), scope.get("path", "")
        if not any(method == m and route.fullmatch(path) for m, route in cls.BEARER_ROUTES):
            return False
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() != ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        open_path = (
            path in self.OPEN_PATHS
            or (self.OPEN_VERSIONED.fullmatch(path) is not None and scope.get("method", "GET") in {"GET", "HEAD"})
            or self.bearer_route(scope)
        )
        if scope["type"] not in {"http", "websocket"} or open_path:
            await self.app(scope, receive, send)
            return
        cookies = _cookies(Headers(scope=scope).get("cookie", ""))
        if check_auth_cookie(self.secret, cookies.get(COOKIE_NAME)):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "login required"})
            return
        accepts_html = "text/html" in Headers(scope=scope).get("accept", "")
        if scope["method"] == "GET" and accepts_html:
            await _respond(send, 303, b"", [(b"location", b"/login")])
        else:
            body = b'{"error":{"code":"login_required","message":"Log in first: this app needs its access password."}}'
            await _respond(send, 401, body, [(b"content-type", b"application/json")])


def _cookies(header: str) -> MutableMapping[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_bind(host: str, settings: Settings) -> str | None:
    """Why the app must not start on `host` with these settings, or None."""
    if settings.allow_public_without_password and not (settings.app_password or settings.allowed_hosts):
        return PUBLIC_NEEDS_HOSTS
    if is_loopback(host) or settings.app_password or settings.allow_public_without_password:
        return None
    return (
        f"Refusing to listen on {host}: anyone who can reach it could mint provider tokens. "
        "Set APP_PASSWORD, or APP_ALLOW_PUBLIC=1 if a proxy in front already authenticates users."
    )
