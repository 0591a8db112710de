"""Settings: one frozen value built from an environment mapping. Nothing here reads the environment at import."""

from __future__ import annotations

import math
import os
import pwd
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from server.engine.config import EngineConfig

TRUEBAR_AUTH_URL = "https://auth.true-bar.si/realms/truebar/protocol/openid-connect/token"
TRUEBAR_API_BASE_URL = "https://api.true-bar.si"
TRUEBAR_STT_WS_URL = "wss://api.true-bar.si/api/pipelines/stream"
TRUEBAR_ASR_TAG = "KALDI:en-US:*:*"
WIRO_API_BASE_URL = "https://api.wiro.ai/v1"
WIRO_SOCKET_URL = "wss://socket.wiro.ai/v1"
WIRO_MODEL = "wiro/voxtral-mini-realtime"
WIRO_TRANSCRIPTION_DELAY = "balanced"


def _redis_url(url: str) -> bool:
    """`url` is one redis-py connects to: redis:// or rediss:// with a host (and a whole-number port, if any), or
    unix:// with a path. Checked at start, where a mistake gets a clear message, not a traceback at the first use."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return bool(parts.path)
    try:
        return parts.scheme in ("redis", "rediss") and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # a port that is no number, or out of range
        return False


def _home_expanded(value: str, env: Mapping[str, str]) -> str:
    """A path setting with a leading `~` expanded as a shell would: `~` and `~/…` from `env`'s HOME (the mapping the
    settings are built from, not this process's environment), else the password database's home of this user;
    `~user/…` from the password database. Anything else as it is."""
    if value == "~" or value.startswith("~/"):
        home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
        return str(Path(home) / value[2:]) if value != "~" else home
    # Only the `~user` form is left that expanduser changes, and for it expanduser reads no environment variable.
    return os.path.expanduser(value) if value.startswith("~") else value


# APP_SECRET_KEY's shortest length. Every offline-engine grant the app signs with it carries its text beside its
# HMAC-SHA256, so anyone holding one can test guesses at the key offline, as fast as they can hash; 32 random
# characters (192 bits in token_urlsafe's alphabet; the key made when none is given has 43) put that out of reach.
# A length is all that can be checked: the README says to make the key with token_urlsafe.
SECRET_KEY_MIN = 32


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable (never a secret's value)."""


def _check_socket_url(variable: str, url: str, example: str) -> None:
    """`url` is a WebSocket URL the page can be sent to: ws:// or wss:// with a host. Checked at start: a malformed
    one (an IPv6 host without its "]") made every response a 500, /healthz too, as each names it in its CSP."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("ws", "wss") and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # a bracket left open, a port that is no number or out of range
        ok = False
    if not ok:
        raise SettingsError(f"{variable} must be a ws:// or wss:// URL with a host, such as {example}.")


@dataclass(frozen=True)
class TruebarSettings:
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = "truebar-client"
    auth_url: str = TRUEBAR_AUTH_URL
    api_base_url: str = TRUEBAR_API_BASE_URL
    stt_ws_url: str = TRUEBAR_STT_WS_URL
    asr_tag: str = TRUEBAR_ASR_TAG

    def __post_init__(self) -> None:
        _check_socket_url("TRUEBAR_STT_WS_URL", self.stt_ws_url, TRUEBAR_STT_WS_URL)

    def missing(self) -> tuple[str, ...]:
        """The environment variables that must still be set for this provider to work."""
        out = []
        if not self.username:
            out.append("TRUEBAR_USERNAME")
        if not self.password:
            out.append("TRUEBAR_PASSWORD")
        return tuple(out)


@dataclass(frozen=True)
class WiroSettings:
    api_key: str = field(default="", repr=False)
    # Optional: without it the project is assumed to use key-only authentication.
    api_secret: str = field(default="", repr=False)
    api_base_url: str = WIRO_API_BASE_URL
    socket_url: str = WIRO_SOCKET_URL
    model: str = WIRO_MODEL
    transcription_delay: str = WIRO_TRANSCRIPTION_DELAY
    # A task the page never ends is killed after this many seconds (it holds a billed concurrency slot).
    task_deadline_s: float = 3600.0
    # How often each process looks for tasks past their deadline (any process's: a dead replica's tasks too).
    reap_interval_s: float = 5.0

    def __post_init__(self) -> None:
        _check_socket_url("WIRO_SOCKET_URL", self.socket_url, WIRO_SOCKET_URL)
        # The key is sent in a header, which takes printable ASCII only (no spaces: it is trimmed of them anyway):
        # a zero-width space pasted with it made every Wiro mint a 500. (The secret only keys the signature, as
        # UTF-8.) Neither the key nor any of it is in the message.
        if not all(" " < c <= "~" for c in self.api_key):
            raise SettingsError("WIRO_API_KEY has a character that is not printable ASCII (one pasted with it?).")

    def missing(self) -> tuple[str, ...]:
        return () if self.api_key else ("WIRO_API_KEY",)


@dataclass(frozen=True)
class LocalSettings:
    """The embedded engine: whether it is offered, and its own config (defaults in server/engine/config.py)."""

    enabled: bool = True
    engine: EngineConfig = field(default_factory=EngineConfig)
    # The sessions of every worker's engine together (LOCAL_MAX_SESSIONS before `--workers` gives each worker its
    # share, server.__main__.engine_share): a client's cap counts in a ledger all the workers share, so it follows
    # the whole, not one worker's share. None: this engine's own size (one process).
    all_workers_sessions: int | None = None


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    truebar: TruebarSettings = TruebarSettings()
    wiro: WiroSettings = WiroSettings()
    local: LocalSettings = LocalSettings()
    # Signs the app's own short-lived tokens (local engine) and cookies; random per process unless set.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    app_password: str = field(default="", repr=False)
    allow_public_without_password: bool = False
    # Host names the app answers to besides loopback (a public install's own name); see security.allowed_hosts.
    allowed_hosts: tuple[str, ...] = ()
    # Proxies whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips); empty: none, so a client cannot
    # pick its own address to dodge the per-client limits.
    trusted_proxies: str = ""
    # Seconds the server waits for any upstream (token endpoint, Run) before answering 504.
    upstream_timeout_s: float = 10.0
    # Lifetime of tokens the app mints itself (local engine).
    local_token_ttl_s: float = 300.0
    # POST /api/sessions per client: a token bucket of this many per minute, and this many open at once.
    session_rate_per_min: int = 30
    max_sessions_per_client: int = 4
    # Shared state (rate limits, open sessions, spent grants, Wiro tasks) for several processes or replicas;
    # empty: this process's memory. It may hold a password, so it is never printed.
    redis_url: str = field(default="", repr=False)
    # Seconds a call to Redis may take before a mint is answered 503 (bounded by upstream_timeout_s).
    redis_timeout_s: float = 2.0
    # An engine socket that sends nothing for this long is told why and closed (it holds a decoder).
    local_idle_timeout_s: float = 30.0
    # Shared captions: viewers per share; how long a share outlives its recording (and lasts before the first
    # one), and the most it ever lives, whatever the page does (a share whose page crashed mid-recording ends then).
    captions_max_viewers: int = 300
    captions_grace_s: float = 1800.0
    captions_max_s: float = 4 * 3600.0
    # Open shares per client (an address: `client_key`): each keeps up to 500 finals (about a megabyte) while it
    # lives, so without a cap one client could fill the server's memory or Redis by making shares.
    captions_max_shares_per_client: int = 10
    # How often an open viewer stream looks at its share again (expiry, lease); not from the environment.
    captions_check_s: float = 5.0
    # The folder where the workers of one `python -m server --workers N` write their metrics, for /metrics to serve
    # their sum (prometheus-client's multiprocess mode); None: this process's own numbers. Set by the entry point
    # (server/__main__.py), not read from the environment here.
    metrics_dir: Path | None = None
    # Publish requests per share and minute: the page starts its requests at least 200 ms apart (FLUSH_MS in
    # static/captions/publisher.js), at most 300 a minute, so this only stops a runaway or hostile publisher; not
    # from the environment (it follows the page, not the install).
    captions_publish_rate_per_min: int = 600
    # How often this process's in-memory state drops what has expired even when nothing writes to it (an expired
    # share's words must not stay in memory until the next thousand writes); not from the environment.
    state_sweep_s: float = 30.0
    log_level: str = "info"

    def __post_init__(self) -> None:
        # Here, not in from_env alone: an app made with create_app(Settings(...)) signs its grants with this key too.
        if len(self.secret_key) < SECRET_KEY_MIN:
            # Not the key itself in the message, nor anything of it.
            raise SettingsError(
                f"APP_SECRET_KEY must be at least {SECRET_KEY_MIN} characters (Settings.secret_key): a "
                "shorter one can be found by trying keys offline against a single grant the app minted, and then "
                "grants can be forged. Make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (os.environ merged with a .env file by the caller)."""

        def get(name: str, default: str = "") -> str:
            return env.get(name, "").strip() or default

        def path(name: str, default: str = "") -> str:
            return _home_expanded(get(name, default), env)

        def flag(name: str, default: bool = False) -> bool:
            raw = get(name).lower()
            if not raw:
                return default
            if raw in {"1", "true", "yes", "on"}:
                return True
            if raw in {"0", "false", "no", "off"}:
                return False
            raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}.")

        def integer(name: str, default: int, low: int = 0, high: int | None = None) -> int:
            raw = get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {raw!r}.") from None
            if value < low:
                raise SettingsError(f"{name} must be at least {low}, not {value}.")
            if high is not None and value > high:
                raise SettingsError(f"{name} must be at most {high}, not {value}.")
            return value

        def number(name: str, default: float) -> float:
            raw = get(name, str(default))
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, not {raw!r}.") from None
            if not math.isfinite(value) or value <= 0:
                raise SettingsError(f"{name} must be a positive number, not {raw!r}.")
            return value

        base = cls()
        engine = base.local.engine
        if get("APP_REDIS_URL") and not _redis_url(get("APP_REDIS_URL")):
            # Not the URL itself in the message: it may hold the password.
            raise SettingsError(
                "APP_REDIS_URL must be a Redis URL: redis://[:password@]host[:port][/db], rediss://… (TLS) or "
                "unix:///path/to/redis.sock."
            )
        if get("APP_REDIS_URL") and not get("APP_SECRET_KEY"):
            raise SettingsError(
                "APP_REDIS_URL is set, so several processes share this app's state: set APP_SECRET_KEY too, the "
                "same on every process (each would otherwise sign grants and cookies with its own random key)."
            )
        settings = cls(
            host=get("APP_HOST", base.host),
            port=integer("APP_PORT", base.port, high=65535),
            truebar=TruebarSettings(
                username=get("TRUEBAR_USERNAME"),
                password=get("TRUEBAR_PASSWORD"),
                client_id=get("TRUEBAR_CLIENT_ID", "truebar-client"),
                auth_url=get("TRUEBAR_AUTH_URL", TRUEBAR_AUTH_URL),
                api_base_url=get("TRUEBAR_API_BASE_URL", TRUEBAR_API_BASE_URL),
                stt_ws_url=get("TRUEBAR_STT_WS_URL", TRUEBAR_STT_WS_URL),
                asr_tag=get("TRUEBAR_ASR_TAG", TRUEBAR_ASR_TAG),
            ),
            wiro=WiroSettings(
                api_key=get("WIRO_API_KEY"),
                api_secret=get("WIRO_API_SECRET"),
                api_base_url=get("WIRO_API_BASE_URL", WIRO_API_BASE_URL),
                socket_url=get("WIRO_SOCKET_URL", WIRO_SOCKET_URL),
                model=get("WIRO_MODEL", WIRO_MODEL),
                transcription_delay=get("WIRO_TRANSCRIPTION_DELAY", WIRO_TRANSCRIPTION_DELAY),
                task_deadline_s=number("WIRO_TASK_DEADLINE_S", 3600.0),
                reap_interval_s=number("WIRO_REAP_INTERVAL_S", 5.0),
            ),
            local=LocalSettings(
                enabled=flag("LOCAL_ENGINE", True),
                engine=EngineConfig(
                    max_sessions=integer("LOCAL_MAX_SESSIONS", engine.max_sessions, low=1),
                    # Paths are expanded here, at the entry point: the engine takes each as it is given.
                    hmm=path("LOCAL_HMM"),
                    lm=path("LOCAL_LM"),
                    dictionary=path("LOCAL_DICT"),
                    jsgf=path("LOCAL_JSGF"),
                    vad_window_s=number("LOCAL_VAD_WINDOW_S", 1.0) if get("LOCAL_VAD_WINDOW_S") else None,
                    fwdflat=flag("LOCAL_FWDFLAT", engine.fwdflat),
                    bestpath=flag("LOCAL_BESTPATH", engine.bestpath),
                    rescoring_with_whisper=flag("LOCAL_RESCORING_WITH_WHISPER", engine.rescoring_with_whisper),
                    lean_search=flag("LOCAL_LEAN_SEARCH", engine.lean_search),
                    shed_after_ms=integer("LOCAL_SHED_AFTER_MS", engine.shed_after_ms, low=0),
                    shed_hold_ms=integer("LOCAL_SHED_HOLD_MS", engine.shed_hold_ms, low=0),
                    admit_behind_ms=integer("LOCAL_ADMIT_BEHIND_MS", engine.admit_behind_ms, low=0),
                    whisper=flag("LOCAL_WHISPER", engine.whisper),
                    whisper_model=path("LOCAL_WHISPER_MODEL", engine.whisper_model),
                    whisper_threads=integer("LOCAL_WHISPER_THREADS", engine.whisper_threads, low=1, high=64),
                    whisper_beam=integer("LOCAL_WHISPER_BEAM", engine.whisper_beam, low=1, high=10),
                    whisper_queue=integer("LOCAL_WHISPER_QUEUE", engine.whisper_queue, low=1),
                    whisper_nice=integer("LOCAL_WHISPER_NICE", engine.whisper_nice, low=0, high=19),
                    fallback_after_s=number("LOCAL_FALLBACK_AFTER_S", engine.fallback_after_s),
                    merge_pause_ms=integer("LOCAL_MERGE_PAUSE_MS", engine.merge_pause_ms),
                    speech_pause_ms=integer("LOCAL_SPEECH_PAUSE_MS", engine.speech_pause_ms, low=0, high=5000),
                    model_cache=path("LOCAL_MODEL_CACHE", engine.model_cache),
                ),
            ),
            secret_key=get("APP_SECRET_KEY") or base.secret_key,
            app_password=get("APP_PASSWORD"),
            allow_public_without_password=flag("APP_ALLOW_PUBLIC"),
            allowed_hosts=tuple(h.strip() for h in get("APP_ALLOWED_HOSTS").split(",") if h.strip()),
            trusted_proxies=get("APP_TRUSTED_PROXIES"),
            upstream_timeout_s=number("APP_UPSTREAM_TIMEOUT_S", 10.0),
            session_rate_per_min=integer("APP_SESSION_RATE_PER_MIN", 30, low=1),
            max_sessions_per_client=integer("APP_MAX_SESSIONS_PER_CLIENT", 4, low=1),
            redis_url=get("APP_REDIS_URL"),
            redis_timeout_s=number("APP_REDIS_TIMEOUT_S", 2.0),
            local_idle_timeout_s=number("LOCAL_IDLE_TIMEOUT_S", 30.0),
            captions_max_viewers=integer("APP_CAPTIONS_MAX_VIEWERS", 300, low=1),
            captions_grace_s=number("APP_CAPTIONS_GRACE_S", 1800.0),
            captions_max_s=number("APP_CAPTIONS_MAX_S", 4 * 3600.0),
            captions_max_shares_per_client=integer("APP_CAPTIONS_MAX_SHARES_PER_CLIENT", 10, low=1),
            log_level=log_level(get("APP_LOG_LEVEL", "info")),
        )
        if problem := settings.local.engine.problem():
            raise SettingsError(problem)
        return settings


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def log_level(raw: str) -> str:
    if raw.lower() not in LOG_LEVELS:
        raise SettingsError(f"APP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}.")
    return raw.lower()


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a .env file sets, read as python-dotenv reads it (quotes, escapes inside double quotes,
    `export `, a `# comment` after a value); nothing when there is no such file. A name without `=` sets nothing.
    Not interpolated: a `${NAME}` stays as written, so a secret holding one is taken as is and nothing is read from
    the environment here."""
    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{path} is not UTF-8 text.") from None
    return {key: value for key, value in values.items() if value is not None}
