"""The served OpenAPI description matches the API: schemathesis generates requests for every /api and /v1
operation and checks for server errors, undocumented statuses and content types, and bodies off the schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import World, build_world
from tests.ui.test_access import make_pdf

# Anonymous and forged-token requests are refused on every route in test_access.py and test_api.py.
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("schema")
    (root / "hr").mkdir()
    make_pdf(root / "hr" / "travel.pdf", ["Travel policy overview.", "Employees fly economy class under six hours."])
    with FakeOllama(FakeOllamaScript(reply="Economy class [1].")) as fake:
        built = build_world(root, embedder, fake, {"hr": root / "hr"}, ["hr"])
        serve(built)
        _, built.ids["token"] = built.services.web.tokens.create(SYSTEM, "admin", "schemathesis")
        yield built
        built.services.close()


OPERATIONS = [
    ("GET", "/v1/models"), ("GET", "/v1/models/{model_id}"), ("POST", "/v1/chat/completions"),
    ("GET", "/api/status"), ("GET", "/api/documents"), ("GET", "/api/documents/{document_id}"),
    ("GET", "/api/documents/{document_id}/file"), ("POST", "/api/ingest"), ("GET", "/api/jobs"),
    ("GET", "/api/jobs/{job_id}"),
    ("GET", "/api/sources"), ("POST", "/api/sources"), ("GET", "/api/sources/{name}"),
    ("GET", "/api/sources/{name}/runs"), ("POST", "/api/sources/{name}/sync"), ("POST", "/api/sources/{name}/confirm"),
    ("POST", "/api/sources/{name}/pause"), ("POST", "/api/sources/{name}/resume"), ("DELETE", "/api/sources/{name}"),
]


@pytest.fixture(scope="module")
def api_schema(world: World) -> Any:
    return schemathesis.openapi.from_url(f"{world.url}/api/openapi.json",
                                         headers={"authorization": f"Bearer {world.ids['token']}"})


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_api_behaves_as_its_openapi_description_says(method: str, path: str, api_schema: Any,
                                                          world: World) -> None:
    headers = {"authorization": f"Bearer {world.ids['token']}"}

    @given(case=api_schema[path][method].as_strategy())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=world.url, headers=headers, checks=CHECKS, timeout=60)

    check()


def test_the_description_covers_every_api_route(api_schema: Any, world: World) -> None:
    from tests.ui.test_access import concrete_routes

    documented = {(method.upper(), path) for path, ops in api_schema.raw_schema["paths"].items() for method in ops}
    assert documented == set(OPERATIONS)
    routes = {(m, p) for m, p in concrete_routes(world.app) if p.startswith(("/api/", "/v1/"))}
    assert routes - {("GET", "/api/openapi.json")} == {
        (m, re.sub(r"\{\w+\}", "1", p)) for m, p in OPERATIONS}, "a new API route needs its description"
