"""Another team's page, on its own origin, adopting the browser SDK from the packed tarball: its backend has its own
tiny token endpoint (which mints through this app's /api/sessions, server to server, where the credentials stay),
and its page imports `live-stt` through an import map, with no bundler. It transcribes through the offline engine.

    npm pack                                                  # live-stt-0.1.0.tgz
    .venv/bin/python examples/other_origin/server.py --tarball live-stt-0.1.0.tgz \\
        --stt-url http://127.0.0.1:8000 --port 8100            # then open http://127.0.0.1:8100/

The speech app must be running (`make run`). playwright/test_sdk_example.py runs this page in Chromium, Firefox and
WebKit. Only Starlette, httpx and uvicorn are needed (the app's own dependencies).
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
# The one engine this page offers: a grant for anything else is refused here, before the speech app is asked.
PROVIDERS = frozenset({"local"})


def unpack(tarball: Path, into: Path) -> Path:
    """The package directory of an `npm pack` tarball (npm puts everything under `package/`)."""
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: no absolute paths, links out of `into`, device files
            tar.extractall(into, filter="data")
        else:  # our own tarball from `npm pack`, not a stranger's
            tar.extractall(into)
    return into / "package"


def same_origin(request: Request) -> bool:
    # The place for this team's own auth (a session cookie, say). What it must at least do: refuse other sites, so a
    # foreign page cannot spend this backend's grants through a visitor's browser.
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    return site in (None, "same-origin") and origin in (None, own)


def create_app(stt_url: str, package_dir: Path) -> Starlette:
    """The page, its token endpoint, and the unpacked package under /vendor/live-stt/."""

    async def token(request: Request) -> Response:
        if not same_origin(request):
            return JSONResponse({"error": {"code": "forbidden", "message": "Not from this page."}}, status_code=403)
        body = await request.json()
        provider = body.get("provider") if isinstance(body, dict) else None
        if provider not in PROVIDERS:
            refusal = {"error": {"code": "bad_provider", "message": "Only the offline engine."}}
            return JSONResponse(refusal, status_code=400)
        async with httpx.AsyncClient(timeout=20) as http:
            minted = await http.post(f"{stt_url}/api/sessions", json={"provider": provider})
        # The grant passes through as the speech app made it; its status too, so the SDK knows a refusal (4xx, not
        # retried) from an outage (5xx, retried on a reconnect).
        return Response(minted.content, status_code=minted.status_code, media_type="application/json")

    async def end(request: Request) -> Response:
        if not same_origin(request):
            return Response(status_code=403)
        body = await request.json()
        if not isinstance(body, dict):
            return Response(status_code=400)
        provider, session_id = body.get("provider"), body.get("session_id")
        if provider in PROVIDERS and isinstance(session_id, str) and session_id:
            async with httpx.AsyncClient(timeout=10) as http:
                await http.post(f"{stt_url}/api/sessions/{provider}/{session_id}/end")
        return Response(status_code=204)

    def page(name: str, media_type: str) -> Route:
        async def serve(_: Request) -> Response:
            return FileResponse(HERE / name, media_type=media_type)

        return Route("/" if name == "index.html" else f"/{name}", serve)

    return Starlette(
        routes=[
            page("index.html", "text/html"),
            page("app.js", "text/javascript"),
            Route("/token", token, methods=["POST"]),
            Route("/token/end", end, methods=["POST"]),
            Mount("/vendor/live-stt", StaticFiles(directory=package_dir)),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tarball", type=Path, required=True, help="the SDK from `npm pack`")
    parser.add_argument("--stt-url", default="http://127.0.0.1:8000", help="the speech app (its mint endpoint)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(args.stt_url.rstrip("/"), unpack(args.tarball, Path(tmp)))
        uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
