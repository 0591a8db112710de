"""The app's HTTP API as an OpenAPI 3.1 document, served at GET /openapi.json.

The paths (what each answers, and why) are written here; every body's schema is generated from the wire models
(server/wire.py) the routes answer with, and the provider names from the app's providers, so the document cannot
drift from the code. schemathesis checks the app against it (tests/test_schemathesis.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.wire import (
    CAPTION_SEQ_MAX,
    CaptionGap,
    Ended,
    Error,
    Grant,
    Health,
    ProviderOptions,
    Providers,
    PublishBody,
    PublishResult,
    Readiness,
    Revoked,
    SessionBody,
    ShareGrant,
    ShareStatus,
    schema_of,
)

_ERROR = {"$ref": "#/components/schemas/Error"}
_READY = {"$ref": "#/components/schemas/Readiness"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


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


def _components(provider_names: Sequence[str]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (
        Error,
        Providers,
        SessionBody,
        Grant,
        Readiness,
        Health,
        Ended,
        ShareGrant,
        ShareStatus,
        PublishBody,
        PublishResult,
        Revoked,
        CaptionGap,
    ):
        schema_of(model, schemas)
    schemas["Options"] = schema_of(ProviderOptions, schemas)
    names = {"type": "string", "enum": list(provider_names)}
    schemas["SessionBody"]["properties"]["provider"] = names
    schemas["Grant"]["properties"]["provider"] = names
    return {"schemas": schemas}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _captions_paths() -> dict[str, Any]:
    """Shared captions (server/captions.py)."""
    share = {"name": "share_id", "in": "path", "required": True, "schema": {"type": "string"}}
    no_store = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}}
    gone = {
        "404": _error("No such share: expired, never existed, or a malformed id."),
        "410": _error("The share was revoked."),
    }
    state_down = {"503": _error("The app's shared state (Redis) is unavailable.", headers=_RETRY_AFTER)}
    bearer = {
        "403": _error("Not from this app's page, or without the share's publish token (Authorization: Bearer)."),
    }
    return {
        "/api/captions": {
            "post": {
                "operationId": "createShare",
                "summary": "Make a read-only captions link for the page's recordings (the app's own page only).",
                "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": _json(_ref("ShareGrant"), "The new share.", headers=no_store),
                    "401": _LOGIN,
                    "403": _error("Not from this app's page (a foreign Origin, or a cross-site request)."),
                    "413": _error("The body is larger than 1 KiB."),
                    "415": _error("The body is not sent as application/json."),
                    "429": _error("Too many shares made by this client.", headers=_RETRY_AFTER),
                    **state_down,
                },
            }
        },
        "/api/captions/{share_id}": {
            "get": {
                "operationId": "shareStatus",
                "summary": "A share's status, for anyone with the link (no login needed).",
                "parameters": [share],
                "responses": {
                    "200": _json(
                        _ref("ShareStatus"), "The share (revoked ones too, until they expire).", headers=no_store
                    ),
                    "404": _error("No such share: expired, never existed, or a malformed id."),
                    **state_down,
                },
            },
            "delete": {
                "operationId": "revokeShare",
                "summary": "Stop sharing: the transcript is deleted and open viewers are told.",
                "parameters": [share],
                "responses": {
                    "200": _json(_ref("Revoked"), "Revoked now (true), or already (false)."),
                    "401": _LOGIN,
                    **bearer,
                    "404": _error("No such share: expired, never existed, or a malformed id."),
                    **state_down,
                },
            },
        },
        "/api/captions/{share_id}/events": {
            "post": {
                "operationId": "publishCaptions",
                "summary": "The recording page publishes finals and the line being recognised "
                "(Authorization: Bearer <publish token>).",
                "parameters": [share],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PublishBody")}}},
                "responses": {
                    "200": _json(_ref("PublishResult"), "Published.", headers=no_store),
                    "400": _error("The body is not valid JSON or not a valid list of events."),
                    "401": _LOGIN,
                    **bearer,
                    **gone,
                    "413": _error("The body is too large."),
                    "415": _error("The body is not sent as application/json."),
                    "429": _error("Published too often.", headers=_RETRY_AFTER),
                    **state_down,
                },
            }
        },
        "/api/captions/{share_id}/stream": {
            "get": {
                "operationId": "watchCaptions",
                "summary": "Server-Sent Events for viewers: `final` (id: its number; resume with Last-Event-ID), "
                "`partial` (no id; may be coalesced), `state` (data.live: a recording is being published; the first "
                "one's id is the viewer's place, 0 before any final, so a reconnect is not taken for a new viewer), "
                "`gap` (data: CaptionGap; before the finals of a resume when the finals after the viewer's last "
                "are no longer all kept), `end` (data.reason: revoked or expired; the stream closes).",
                "parameters": [
                    share,
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "The viewer's last final (0: it came before any), for a new stream that "
                        "has no Last-Event-ID (the later of the two is used). Neither given: a new viewer, sent what "
                        "the log keeps without a gap.",
                        "schema": {"type": "integer", "minimum": 0, "maximum": CAPTION_SEQ_MAX},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _error("`after` is not a whole number from 0."),
                    **gone,
                    "429": _error("The share has as many viewers as it allows.", headers=_RETRY_AFTER),
                    **state_down,
                },
            }
        },
    }


def openapi_document(provider_names: Sequence[str]) -> dict[str, Any]:
    """The document for an app with these providers, built fresh on each call (callers may mutate it)."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": list(provider_names)}}
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
                "responses": {"200": _json({"$ref": "#/components/schemas/Health"}, "Alive.")},
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
                "parameters": [name],
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
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionBody"}}},
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
                    name,
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(
                        {"$ref": "#/components/schemas/Ended"},
                        "Whether this call ended something: false when the session had already ended, was never "
                        "held, or is unknown (unknown ids are ignored).",
                    ),
                    "401": _LOGIN,
                    "403": _error("Not from this app's page."),
                    "404": _NOT_FOUND,
                    "429": _error("Too many sessions ended by this client.", headers=_RETRY_AFTER),
                    **_upstream_errors(),
                },
            }
        },
    }
    paths.update(_captions_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Live speech-to-text",
            "version": "0.1.0",
            "description": "Session grants for in-browser streaming to Truebar, Wiro or the embedded engine. "
            "Audio never passes through these endpoints: the browser streams to the grant's ws_url.",
        },
        "paths": paths,
        "components": _components(provider_names),
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(list(request.app.state.providers)))


def openapi_route() -> Route:
    return Route("/openapi.json", openapi, methods=["GET"])
