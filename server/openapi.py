"""The app's HTTP API as a hand-written OpenAPI 3.1 document, served at GET /openapi.json.

Written by hand rather than generated so it states the contract the page relies on (every error is
`{"error": {"code", "message"}}`), and schemathesis checks the app against it (tests/test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PROVIDER_NAMES = ["local", "truebar", "wiro"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


_READY: dict[str, Any] = {
    "type": "object",
    "required": ["ready", "checks"],
    "properties": {
        "ready": {"type": "boolean"},
        "checks": {
            "type": "object",
            "required": ["engine", "state"],
            # "ok", "off", "loading" or "failed: …"; "ok" or "unavailable: …".
            "properties": {"engine": {"type": "string"}, "state": {"type": "string"}},
        },
    },
}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return _json(_ERROR, description, **extra)


# Starlette answers paths no route matches (a name holding an encoded '/', say) with a plain-text 404.
_NOT_FOUND = {
    "description": "No such provider, or no such path.",
    "content": {"application/json": {"schema": _ERROR}, "text/plain": {"schema": {"type": "string"}}},
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 1}}
}
_LOGIN = _error("The app has an access password (APP_PASSWORD) and the request carries no valid login cookie.")
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": PROVIDER_NAMES}}


def _upstream_errors() -> dict[str, Any]:
    return {
        "502": _error("The provider failed, refused the configured credentials, or sent an unreadable answer."),
        "503": _error(
            "The provider is limiting sign-ins, the offline engine could not start, or the app's shared state (Redis) "
            "is unavailable.",
            headers=_RETRY_AFTER,
        ),
        "504": _error("The provider did not answer within the app's upstream timeout."),
    }


def _components() -> dict[str, Any]:
    provider_status = {
        "type": "object",
        "required": ["name", "label", "configured", "missing", "detail", "offline"],
        "properties": {
            "name": {"type": "string"},
            "label": {"type": "string"},
            "configured": {"type": "boolean"},
            "missing": {"type": "array", "items": {"type": "string"}, "description": "Variables still to set."},
            "detail": {"type": "string"},
            "offline": {"type": "boolean"},
        },
    }
    grant = {
        "type": "object",
        "description": "A short-lived grant: the browser opens `ws_url` with `token` and streams PCM16 mono at "
        "`sample_rate`, `frame_samples` per frame. Never holds a long-lived credential.",
        "required": [
            "provider",
            "protocol",
            "ws_url",
            "token",
            "expires_at",
            "sample_rate",
            "frame_samples",
            "session_id",
        ],
        "properties": {
            "provider": {"type": "string", "enum": PROVIDER_NAMES},
            "protocol": {"type": "string", "enum": ["truebar", "wiro"]},
            "ws_url": {"type": "string", "pattern": "^wss?://"},
            "token": {"type": "string", "minLength": 1},
            "expires_at": {"type": "number", "description": "Unix seconds."},
            "sample_rate": {"type": "integer", "enum": [16000, 24000]},
            "frame_samples": {"type": "integer", "minimum": 1},
            "session_id": {"type": "string", "minLength": 1},
            "tag": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "task_id": {"type": "string"},
            "offline": {"type": "boolean"},
        },
    }
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "ProviderStatus": provider_status,
            "Providers": {
                "type": "object",
                "required": ["providers", "default"],
                "properties": {
                    "providers": {"type": "array", "items": {"$ref": "#/components/schemas/ProviderStatus"}},
                    "default": {"type": ["string", "null"], "description": "The provider the page selects first."},
                },
            },
            "Options": {
                "type": "object",
                "description": "Truebar and the offline engine: ASR tags; Wiro: its transcription delay.",
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "default_tag": {"type": "string"},
                    "transcription_delay": {"type": "string"},
                },
            },
            "SessionRequest": {
                "type": "object",
                "required": ["provider"],
                "properties": {
                    "provider": {"type": "string", "enum": PROVIDER_NAMES},
                    "tag": {"type": "string", "description": "Truebar: an ASR tag from the options listing."},
                },
            },
            "Grant": grant,
        }
    }


def openapi_document() -> dict[str, Any]:
    """The document, built fresh on each call (callers may mutate it)."""
    session_errors = {
        "400": _error("The body is not a JSON object, or names no known provider."),
        "401": _LOGIN,
        "402": _error("Wiro: the account's balance is insufficient."),
        "403": _error("Not from this app's page (a foreign Origin, or a cross-site request)."),
        "409": _error("The provider is not configured on this server."),
        "413": _error("The body is larger than 16 KiB."),
        "415": _error("The body is not sent as application/json."),
        "429": _error("Too many sessions started, or open, from this client.", headers=_RETRY_AFTER),
        **_upstream_errors(),
    }
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness.",
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}}, "Alive."
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the offline engine is loaded (or off) and the shared state store answers.",
                "responses": {
                    "200": _json(_READY, "Ready to serve sessions."),
                    "503": _json(
                        _READY,
                        "Not ready (the engine is loading or failed, or the state store is down).",
                        headers={"Retry-After": {"schema": {"type": "string"}}},
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Counters, gauges and latency histograms in the Prometheus text format.",
                "responses": {
                    "200": {
                        "description": "The Prometheus exposition format (version 0.0.4).",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _LOGIN,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document."), "401": _LOGIN},
            }
        },
        "/api/providers": {
            "get": {
                "operationId": "listProviders",
                "summary": "Every provider, whether it is configured, and why not.",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Providers"}, "The providers."),
                    "401": _LOGIN,
                },
            }
        },
        "/api/providers/{name}/options": {
            "get": {
                "operationId": "providerOptions",
                "summary": "Choices the page may offer for one provider.",
                "parameters": [_NAME],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Options"}, "The provider's options."),
                    "401": _LOGIN,
                    "404": _NOT_FOUND,
                    "409": _error("The provider is not configured on this server."),
                    **_upstream_errors(),
                },
            }
        },
        "/api/sessions": {
            "post": {
                "operationId": "createSession",
                "summary": "Mint a short-lived session grant for one provider.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionRequest"}}},
                },
                "responses": {
                    "200": _json(
                        {"$ref": "#/components/schemas/Grant"},
                        "The grant.",
                        headers={"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}},
                    ),
                    **session_errors,
                },
            }
        },
        "/api/sessions/{name}/{session_id}/end": {
            "post": {
                "operationId": "endSession",
                "summary": "The page ended a session (also sent by sendBeacon): release what it holds upstream.",
                "parameters": [
                    _NAME,
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["ended"], "properties": {"ended": {"type": "boolean"}}},
                        "Whether this call ended something: false when the session had already ended, was never "
                        "held, or is unknown (unknown ids are ignored).",
                    ),
                    "401": _LOGIN,
                    "403": _error("Not from this app's page."),
                    "404": _NOT_FOUND,
                    **_upstream_errors(),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Live speech-to-text",
            "version": "0.1.0",
            "description": "Session grants for in-browser streaming to Truebar, Wiro or the embedded engine. "
            "Audio never passes through these endpoints: the browser streams to the grant's ws_url.",
        },
        "paths": paths,
        "components": _components(),
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def openapi_route() -> Route:
    return Route("/openapi.json", openapi, methods=["GET"])
