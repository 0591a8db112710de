"""schemathesis against the published OpenAPI document: generated requests (valid and invalid) to the app wired to
both emulators over real sockets; no 5xx, and every answer conforms to the document (status, content type, headers,
body)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from server.emulators.scripted import ScriptedRecognizer
from server.emulators.wiro import WiroEmulatorOptions
from server.openapi import openapi_document, openapi_route
from testkit.stack import PROVIDERS, WIRO_KEY, WIRO_SECRET, stack

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_dict(openapi_document(PROVIDERS))


def with_openapi(app: Starlette) -> Starlette:
    """Serves /openapi.json on an app whose route list does not have it yet."""
    if not any(getattr(route, "path", None) == "/openapi.json" for route in app.routes):
        app.router.routes.insert(0, openapi_route())
    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    # Enough Wiro slots that grants succeed for the whole run instead of turning into 429s after the fourth.
    wiro = WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET, max_concurrent_tasks=10_000)
    with stack(ScriptedRecognizer(), wiro_options=wiro) as s:
        with_openapi(s.app)
        yield s.url


def test_the_served_document_is_the_published_one(base_url: str) -> None:
    r = httpx.get(base_url + "/openapi.json")
    assert r.status_code == 200 and r.json() == openapi_document(PROVIDERS)
    loaded = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operations = {f"{op.method.upper()} {op.path}" for op in (result.ok() for result in loaded.get_all_operations())}
    assert operations >= {
        "GET /healthz",
        "GET /readyz",
        "GET /api/providers",
        "GET /api/providers/{name}/options",
        "POST /api/sessions",
        "POST /api/sessions/{name}/{session_id}/end",
    }


def test_the_checks_catch_a_nonconforming_answer(base_url: str) -> None:
    """A document that promises a field the grant lacks must fail: the conformance checks are really applied."""
    wrong = openapi_document(PROVIDERS)
    wrong["components"]["schemas"]["Grant"]["required"].append("not_in_any_grant")
    operation = schemathesis.openapi.from_dict(wrong)["/api/sessions"]["POST"]
    case = operation.Case(body={"provider": "local"}, media_type="application/json")
    with pytest.raises(FailureGroup) as failures:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)
    assert "not_in_any_grant" in str(failures.value)


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)
