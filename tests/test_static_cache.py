"""Static files are versioned: the page names /static/v/<hash>/..., which browsers may keep for a year because that
URL's content never changes; the HTML pages themselves are revalidated on every load, so after a deploy a browser
runs one consistent set of modules, never old and new mixed."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from server.app import STATIC_DIR, create_app, static_version
from server.settings import Settings
from testkit.live import running

IMMUTABLE = "public, max-age=31536000, immutable"


def versioned_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(?:https?://[^/"]+)?(/static/v/[^"]+)"', html)


def test_the_page_names_versioned_assets_and_is_not_cached(app_url: str) -> None:
    page = httpx.get(app_url + "/")
    assert page.headers["cache-control"] == "no-cache"
    urls = versioned_urls(page.text)
    version = static_version(STATIC_DIR)
    assert sorted(urls) == [f"/static/v/{version}/app.css", f"/static/v/{version}/app.js"]
    for url in urls:
        asset = httpx.get(app_url + url)
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == IMMUTABLE
        assert asset.content == (STATIC_DIR / url.split("/", 4)[4]).read_bytes()


def test_modules_imported_from_a_versioned_module_are_versioned_too(app_url: str) -> None:
    # app.js imports ./page/main.js relatively, so the browser asks for it under the same version prefix.
    version = static_version(STATIC_DIR)
    nested = httpx.get(f"{app_url}/static/v/{version}/page/main.js")
    assert nested.status_code == 200 and nested.headers["cache-control"] == IMMUTABLE
    worklet = httpx.get(f"{app_url}/static/v/{version}/audio/pcm-processor.js")
    assert worklet.status_code == 200 and worklet.headers["cache-control"] == IMMUTABLE
    assert httpx.get(f"{app_url}/static/v/{version}/nope.js").status_code == 404


def test_unversioned_and_stale_urls_are_revalidated_not_kept(app_url: str) -> None:
    plain = httpx.get(app_url + "/static/app.js")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    # A page loaded before a deploy asks for its old version: it gets today's file, not to be cached as the old one.
    stale = httpx.get(app_url + "/static/v/000000000000/app.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


def test_the_version_follows_the_contents(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.js").write_text("export const b = 2;\n")
    first = static_version(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert static_version(tmp_path) == first
    (tmp_path / "sub" / "b.js").write_text("export const b = 3;\n")
    changed = static_version(tmp_path)
    assert changed != first
    (tmp_path / "sub" / "b.js").rename(tmp_path / "sub" / "c.js")
    assert static_version(tmp_path) not in {first, changed}


def test_the_login_page_is_not_cached_and_its_versioned_stylesheet_needs_no_login() -> None:
    settings = Settings(app_password="open sesame", secret_key="k" * 32)
    with running(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        login = client.get("/login")
        assert login.status_code == 200 and login.headers["cache-control"] == "no-cache"
        (css,) = versioned_urls(login.text)
        sheet = client.get(css)
        assert sheet.status_code == 200 and sheet.headers["cache-control"] == IMMUTABLE
        # Every other versioned file still needs the login.
        assert client.get(css.replace("app.css", "app.js")).status_code == 401
