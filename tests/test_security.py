"""The mint endpoint is for the app's own page only; headers, the access password, redaction."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import httpx
import pytest
from starlette.requests import Request

from server.app import LOGIN_RATE_PER_MIN, create_app
from server.providers.local import LocalTokens
from server.security import (
    COOKIE_NAME,
    LOOPBACK_NAMES,
    RedactingFilter,
    allowed_hosts,
    check_auth_cookie,
    check_bind,
    content_security_policy,
    make_auth_cookie,
    redact,
)
from server.sessions import client_key
from server.settings import Settings, SettingsError
from server.state import MemoryState
from testkit.live import running

JSON = {"Content-Type": "application/json"}


def post_session(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url + "/api/sessions", content=b'{"provider": "nope"}', headers={**JSON, **headers})


def test_foreign_origin_and_cross_site_are_refused(app_url: str) -> None:
    assert post_session(app_url, Origin="https://evil.example").status_code == 403
    assert post_session(app_url, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    # The app's own origin passes the guard (and then fails on the unknown provider).
    own = post_session(app_url, Origin=app_url, **{"Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 400


def test_same_site_and_opaque_origins_are_refused_unless_the_browser_vouches(app_url: str) -> None:
    assert post_session(app_url, **{"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert post_session(app_url, Origin="null").status_code == 403
    # Firefox's unload-time beacon: an opaque Origin, but the browser says the request is from this very origin.
    r = httpx.post(app_url + "/api/sessions/wiro/123/end", headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200


def test_simple_form_posts_are_refused(app_url: str) -> None:
    for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"):
        r = httpx.post(app_url + "/api/sessions", content=b"provider=local", headers={"Content-Type": ctype})
        assert r.status_code == 415, ctype
        assert r.json()["error"]["code"] == "json_required"


def test_end_from_a_foreign_origin_is_refused(app_url: str) -> None:
    r = httpx.post(app_url + "/api/sessions/wiro/123/end", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_rate_limit_answers_429_with_retry_after() -> None:
    # The limiter is a sliding-window counter: it weights the previous minute's count by how much of that minute
    # is still in the window, so posts that straddle a minute's boundary let one more through (seen once in CI).
    with running(create_app(Settings(session_rate_per_min=3))) as url:
        answers = []
        while len(answers) < 5 and (not answers or answers[-1].status_code != 429):
            answers.append(post_session(url))
    *allowed, limited = answers
    assert [r.status_code for r in allowed] in ([400] * 3, [400] * 4)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


def test_rate_limit_is_per_client_and_reports_the_wait() -> None:
    state = MemoryState()

    async def scenario() -> tuple[float | None, float | None, float | None, float | None]:
        a1 = await state.rate_limits.hit("t", "a", 2)
        a2 = await state.rate_limits.hit("t", "a", 2)
        a3 = await state.rate_limits.hit("t", "a", 2)
        b1 = await state.rate_limits.hit("t", "b", 2)
        return a1, a2, a3, b1

    a1, a2, a3, b1 = asyncio.run(scenario())
    assert a1 is None and a2 is None and b1 is None
    assert a3 is not None and 1 <= a3 <= 60


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_limits_count_an_ipv6_client_by_its_64(address: str, key: str) -> None:
    """One IPv6 host holds a whole /64: each of its addresses counted alone would give it 2^64 tries at a limit."""
    request = Request({"type": "http", "method": "POST", "path": "/login", "headers": [], "client": (address, 5000)})
    assert client_key(request) == key


def test_login_guesses_from_one_64_share_one_limit() -> None:
    state = MemoryState()

    async def guesses() -> list[float | None]:
        waits = []
        for n in range(1, LOGIN_RATE_PER_MIN + 2):
            request = Request({"type": "http", "headers": [], "client": (f"2001:db8::{n:x}", 5000)})
            waits.append(await state.rate_limits.hit("login", client_key(request), LOGIN_RATE_PER_MIN))
        return waits

    *allowed, refused = asyncio.run(guesses())
    assert allowed == [None] * LOGIN_RATE_PER_MIN
    assert refused is not None


def test_security_headers_on_pages_and_api(app_url: str) -> None:
    for path in ("/", "/api/providers", "/static/app.css"):
        headers = httpx.get(app_url + path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "blob:" not in csp.split("media-src")[0]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "microphone=(self)" in headers["permissions-policy"]


def test_csp_connect_src_lists_only_the_app_and_given_origins() -> None:
    scope = {"type": "http", "scheme": "http", "headers": [(b"host", b"127.0.0.1:8000")]}
    csp = content_security_policy(scope, ["wss://api.true-bar.si"])
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    assert connect.split() == ["connect-src", "'self'", "ws://127.0.0.1:8000", "wss://api.true-bar.si"]
    script = next(d for d in csp.split("; ") if d.startswith("script-src"))
    assert script == "script-src 'self'"


def test_password_gate_login_flow() -> None:
    settings = Settings(app_password="open sesame", secret_key="k" * 32)
    with running(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert client.get("/api/providers").status_code == 401
        assert client.get("/login").status_code == 200
        bad = client.post(
            "/login", content=b"password=nope", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert bad.status_code == 401 and "open sesame" not in bad.text
        good = client.post(
            "/login", content=b"password=open+sesame", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert good.status_code == 303
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        assert client.get("/api/providers").status_code == 200


def test_a_new_password_logs_everyone_out() -> None:
    """A login cookie is bound to the password it was given for: changing APP_PASSWORD (the one way an operator
    shuts out someone who learnt it) must end every login made with the old one, though APP_SECRET_KEY stays."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    old = Settings(app_password="open sesame", secret_key="k" * 32)
    with running(create_app(old)) as url, httpx.Client(base_url=url) as client:
        assert client.post("/login", content=b"password=open+sesame", headers=form).status_code == 303
        cookie = client.cookies[COOKIE_NAME]
        assert client.get("/api/providers").status_code == 200
    new = Settings(app_password="another one", secret_key="k" * 32)
    with running(create_app(new)) as url, httpx.Client(base_url=url, cookies={COOKIE_NAME: cookie}) as client:
        assert client.get("/api/providers").status_code == 401
        assert client.post("/login", content=b"password=another+one", headers=form).status_code == 303
        assert client.get("/api/providers").status_code == 200


def test_auth_cookie_signature_and_expiry() -> None:
    cookie = make_auth_cookie("secret", 60, now=1000)
    assert check_auth_cookie("secret", cookie, now=1030)
    assert not check_auth_cookie("secret", cookie, now=1061)
    assert not check_auth_cookie("other", cookie, now=1030)
    # A later expiry under the old signature.
    later = make_auth_cookie("secret", 9000, now=1000).rsplit(".", 1)[0] + "." + cookie.rsplit(".", 1)[1]
    assert not check_auth_cookie("secret", later, now=1030)
    assert not check_auth_cookie("secret", None)
    # Padding or stray characters after a valid signature: base64 would decode it to the same bytes.
    assert not check_auth_cookie("secret", cookie + "=", now=1030)
    assert not check_auth_cookie("secret", cookie + "\u0080", now=1030)
    assert not check_auth_cookie("secret", "auth.9999999999.forged\u00e9", now=1030)
    # Signed by the same secret for another purpose (a local stream token): not a login.
    token, _ = LocalTokens("secret", 60, clock=lambda: 1000).mint("sid")
    assert not check_auth_cookie("secret", token, now=1030)
    assert LocalTokens("secret", 60, clock=lambda: 1030).verify(cookie) is None


@pytest.mark.parametrize(
    ("host", "password", "allowed"),
    [
        ("127.0.0.1", "", True),
        ("localhost", "", True),
        ("::1", "", True),
        ("0.0.0.0", "", False),
        ("0.0.0.0", "pw", True),
    ],
)
def test_public_bind_needs_a_password(host: str, password: str, allowed: bool) -> None:
    assert (check_bind(host, Settings(app_password=password)) is None) is allowed


def test_public_bind_can_be_forced_for_named_hosts_only() -> None:
    """Without a password, only the Host header tells the app's own page from a DNS-rebinding one: an app forced
    public (behind an authenticating proxy) that answered any Host let a rebound page mint grants past the proxy."""
    forced = Settings(allow_public_without_password=True)
    refusal = check_bind("0.0.0.0", forced)
    assert refusal is not None and "APP_ALLOWED_HOSTS" in refusal and "DNS-rebinding" in refusal
    assert check_bind("127.0.0.1", forced) == refusal
    assert check_bind("0.0.0.0", replace(forced, allowed_hosts=("stt.example.org",))) is None
    assert check_bind("0.0.0.0", replace(forced, app_password="pw")) is None
    assert allowed_hosts(replace(forced, allowed_hosts=("STT.example.org",))) == LOOPBACK_NAMES | {"stt.example.org"}
    with pytest.raises(SettingsError, match="APP_ALLOWED_HOSTS"):
        allowed_hosts(forced)


def no_server(*args: object, **options: object) -> None:
    """main's serve or supervise where it must refuse: a refusal that let it through fails here, not by serving."""
    raise AssertionError("main started serving instead of refusing")


def test_main_refuses_public_bind_without_password(capsys: pytest.CaptureFixture[str]) -> None:
    from server.__main__ import main

    assert main(["--host", "0.0.0.0", "--port", "1", "--env-file", "/nonexistent"], environ={}, serve=no_server) == 2
    assert "APP_PASSWORD" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "env"), [(["--allow-public"], {}), ([], {"APP_ALLOW_PUBLIC": "1"})])
def test_main_refuses_to_go_public_without_a_password_or_host_names(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from server.__main__ import main

    base = ["--host", "0.0.0.0", "--port", "1", "--env-file", "/nonexistent", *argv]
    assert main(base, environ=env, serve=no_server) == 2
    assert "needs APP_ALLOWED_HOSTS" in capsys.readouterr().err
    served: list[object] = []
    named = {**env, "APP_ALLOWED_HOSTS": "stt.example.org"}
    assert main(base, environ=named, serve=lambda app, **_: served.append(app)) == 0 and len(served) == 1


def test_redaction_of_tokens_in_log_lines() -> None:
    line = '127.0.0.1:5 - "WebSocket /api/local/stream?access_token=eyJabc.def&x=1" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /api/local/stream?access_token=***&x=1" [accepted]'
    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, '%s - "WebSocket %s"', ("c", "/s?token=abc"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == 'c - "WebSocket /s?token=***"'
    # Handshake headers as websockets logs them at debug: the login cookie and an Authorization header's credentials.
    assert redact("theme=dark; stt_auth=eyJ.abc-_; lang=sl") == "theme=dark; stt_auth=***; lang=sl"
    assert redact("Bearer eyJzaWQ.x-y_z") == "Bearer ***" and redact("basic dXNlcjpw") == "basic ***"
    assert redact("< authorization: Bearer eyJzaWQ") == "< authorization: Bearer ***"
    # Only a header's value: the words in ordinary text (a transcript in a debug line) stay.
    assert redact("the basic idea, a sha256 digest 905e5b") == "the basic idea, a sha256 digest 905e5b"


def test_redaction_hides_a_credential_whose_name_is_percent_encoded() -> None:
    # Starlette decodes `access%5Ftoken` to `access_token` and accepts the grant: the log line must not keep it.
    line = '127.0.0.1:5 - "WebSocket /api/local/stream?access%5Ftoken=eyJabc.def&x=1" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /api/local/stream?access%5Ftoken=***&x=1" [accepted]'
    assert redact("/s?%61ccess%5fTOKEN=a&%74oken=b&x=1") == "/s?%61ccess%5fTOKEN=***&%74oken=***&x=1"
    # A name that decodes to something else is another parameter, to the app as to the log.
    assert redact("/s?x%5Ftoken=a&access%5Ftokens=b") == "/s?x%5Ftoken=a&access%5Ftokens=b"
    # httpx logs each request's URL as an httpx.URL, not a str.
    url = httpx.URL("http://127.0.0.1:5/?access%5Ftoken=eyJabc.def")
    record = logging.LogRecord("httpx", logging.INFO, "", 0, "HTTP Request: %s %s %d", ("GET", url, 3), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "HTTP Request: GET http://127.0.0.1:5/?access%5Ftoken=*** 3"


@pytest.mark.parametrize("name", ["server.providers.truebar", "wiro", "some.library"])
def test_redaction_holds_for_every_logger(name: str, caplog: pytest.LogCaptureFixture) -> None:
    # The capture handler is added after the app installed redaction, on the root: nothing filters there but the
    # redaction itself, which must not depend on which logger or handler sees the record.
    create_app(Settings())
    with caplog.at_level(logging.INFO, logger=name):
        logging.getLogger(name).info("opening wss://x/stream?access_token=%s&y=1", "eyJsecret.token")
        logging.getLogger(name).info("kill tasktoken=abc123 socketaccesstoken=s3cr3t")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "access_token=***" in text and "tasktoken=***" in text and "socketaccesstoken=***" in text
    assert "eyJsecret" not in text and "abc123" not in text and "s3cr3t" not in text


def test_open_sessions_per_client_are_capped_and_freed_by_ending_one() -> None:
    from server.emulators.scripted import ScriptedRecognizer

    app = create_app(Settings(max_sessions_per_client=2), local_recognizer=ScriptedRecognizer())
    with running(app) as url:
        grants = [httpx.post(url + "/api/sessions", json={"provider": "local"}) for _ in range(2)]
        assert [g.status_code for g in grants] == [200, 200]
        third = httpx.post(url + "/api/sessions", json={"provider": "local"})
        assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_sessions"
        assert int(third.headers["Retry-After"]) >= 1
        ended = httpx.post(f"{url}/api/sessions/local/{grants[0].json()['session_id']}/end")
        assert ended.status_code == 200
        assert httpx.post(url + "/api/sessions", json={"provider": "local"}).status_code == 200
