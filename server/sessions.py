"""POST /api/sessions and GET /api/providers: the provider-neutral session grant."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.providers.base import Provider, ProviderError, SessionRequest

MAX_BODY_BYTES = 16 * 1024


def _providers(request: Request) -> dict[str, Provider]:
    providers: dict[str, Provider] = request.app.state.providers
    return providers


def error_response(exc: ProviderError) -> JSONResponse:
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def ws_origin(request: Request) -> str:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.netloc}"


async def list_providers(request: Request) -> Response:
    providers = _providers(request)
    items = [p.status().to_json() for p in providers.values()]
    default = next((i["name"] for i in items if i["configured"] and not i["offline"]), None)
    if default is None:
        default = next((i["name"] for i in items if i["configured"]), None)
    return JSONResponse({"providers": items, "default": default})


async def provider_options(request: Request) -> Response:
    provider = _providers(request).get(request.path_params["name"])
    if provider is None:
        return error_response(ProviderError(404, "unknown_provider", "No such provider."))
    try:
        return JSONResponse(await provider.options())
    except ProviderError as exc:
        return error_response(exc)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ProviderError(413, "too_large", "The request body is too large.")
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ProviderError(400, "bad_json", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProviderError(400, "bad_json", "The request body must be a JSON object.")
    return data


async def create_session(request: Request) -> Response:
    try:
        body = await _json_body(request)
        name = body.get("provider")
        provider = _providers(request).get(name) if isinstance(name, str) else None
        if provider is None:
            known = ", ".join(_providers(request))
            raise ProviderError(400, "unknown_provider", f"Unknown provider; choose one of: {known}.")
        status = provider.status()
        if not status.configured:
            missing = ", ".join(status.missing)
            raise ProviderError(409, "not_configured", f"{status.label} is not configured: set {missing}.")
        grant = await provider.create_session(
            SessionRequest(options=body, ws_origin=ws_origin(request), client_id=client_key(request))
        )
    except ProviderError as exc:
        return error_response(exc)
    return JSONResponse(grant, headers={"Cache-Control": "no-store"})


async def end_session(request: Request) -> Response:
    """The page ended a session (also sent with sendBeacon on pagehide): release what it holds upstream."""
    provider = _providers(request).get(request.path_params["name"])
    if provider is None:
        return error_response(ProviderError(404, "unknown_provider", "No such provider."))
    try:
        await provider.end_session(request.path_params["session_id"])
    except ProviderError as exc:
        return error_response(exc)
    return JSONResponse({"ended": True})


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"
