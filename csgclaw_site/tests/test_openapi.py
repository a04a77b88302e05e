"""The OpenAPI schema names exactly the API the server routes; its docs page needs nothing but this server.

/api/schema/ and /api/docs/ are API paths: open to callers on this machine, a credential for anyone else
(security.md S4), like every other /api/ route.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from bots.bridge import dispatch as bot_dispatch
from bots.participants import llm as participant_llm
from core import api, http
from core.config import clear_config_cache
from core.openapi import BEARER, HANDWRITTEN

pytestmark = pytest.mark.timeout(30)

SAMPLE_ID = "sample-id"
PLACEHOLDER = re.compile(r"\{([^}/]+)\}")
# The schema describes the API; these are pages and the schema's own routes.
NOT_API = {"", "login", "logout", "api/schema/", "api/docs/"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
TOKEN = "openapi-test-server-token"
REMOTE = "192.0.2.50"


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _sample(path: str) -> str:
    return PLACEHOLDER.sub(SAMPLE_ID, path)


def _served_api_routes(patterns, prefix: str = "") -> set[str]:
    routes: set[str] = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route != "admin/":
                routes |= _served_api_routes(pattern.url_patterns, route)
        elif (
            isinstance(pattern, URLPattern)
            and pattern.callback is not http.not_found
            and route not in NOT_API
        ):
            routes.add(route)
    return routes


def _serving_problem(path: str, method: str) -> str | None:
    """Why the server would not serve `method` on the schema's `path`; None when it does."""
    match = resolve(_sample(path))
    if match.func is http.not_found:
        return "falls through to the 404 route"
    if match.func is bot_dispatch.bot_api:
        parsed = bot_dispatch.parse_bot_path(_sample(path))
        return None if parsed and parsed[1] in bot_dispatch.ACTIONS else "is not a bot action"
    if match.func is participant_llm.agent_llm:
        handlers = participant_llm.ROUTES.get(match.kwargs.get("rest") or "", {})
        return None if method.upper() in handlers else "is not an agent LLM action"
    view_class = getattr(match.func, "view_class", None)
    if view_class is not None and not hasattr(view_class, method):
        return "is not a method of the view"
    return None


def test_the_schema_is_valid_openapi_3(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "CSGClaw API"


def test_the_schema_is_generated_without_warnings_or_errors():
    """drf-spectacular's warnings are schema errors in waiting (two components of one name, say)."""
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        SchemaGenerator().get_schema(request=None, public=True)
    assert (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache)) == ({}, {})


def test_every_operation_of_the_schema_is_served(schema):
    problems = [
        f"{method.upper()} {path} {problem}"
        for path, method, _ in _operations(schema)
        if (problem := _serving_problem(path, method)) is not None
    ]
    assert problems == []


def test_every_api_route_is_in_the_schema(schema):
    described = {resolve(_sample(path)).route for path in schema["paths"]}
    assert _served_api_routes(get_resolver().url_patterns) - described == set()

    bot_actions = {
        bot_dispatch.parse_bot_path(_sample(path))[1]
        for path in schema["paths"]
        if path.startswith("/api/bots/")
    }
    assert bot_actions == set(bot_dispatch.ACTIONS)
    llm_actions = {
        resolve(_sample(path)).kwargs.get("rest") or ""
        for path in schema["paths"]
        if resolve(_sample(path)).func is participant_llm.agent_llm
    }
    assert llm_actions == set(participant_llm.ROUTES)


def test_path_parameters_are_named_as_the_route_names_them(schema):
    for path in schema["paths"]:
        match = resolve(_sample(path))
        if match.func is bot_dispatch.bot_api:
            # One view parses the whole /api/bots/ prefix; its only parameter is the bot id.
            assert PLACEHOLDER.findall(path) == ["bot_id"], path
        else:
            filled = {name for name, value in match.kwargs.items() if value == SAMPLE_ID}
            assert set(PLACEHOLDER.findall(path)) == filled, path


def test_the_hand_written_operations_are_exactly_the_routes_that_are_not_drf_views(schema):
    for path, method, operation in _operations(schema):
        is_drf = hasattr(resolve(_sample(path)).func, "view_class")
        assert operation.get(HANDWRITTEN, False) is not is_drf, f"{method.upper()} {path}"


def test_routes_that_can_answer_401_declare_the_bearer_scheme(schema):
    assert schema["components"]["securitySchemes"][BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"][BEARER]["description"],
    }
    for path, method, operation in _operations(schema):
        if "401" in operation["responses"]:
            assert operation["security"] == [{BEARER: []}], f"{method.upper()} {path}"


def test_every_request_body_is_required(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" in operation:
            assert operation["requestBody"]["required"] is True, f"{method.upper()} {path}"


def test_every_operation_with_a_path_id_can_answer_404(schema):
    """An id that is empty once trimmed (`/api/v1/rooms/%0B/members`) is 404, whatever the route."""
    for path, method, operation in _operations(schema):
        if PLACEHOLDER.search(path):
            assert "404" in operation["responses"], f"{method.upper()} {path}"


def test_no_description_is_a_house_base_class_docstring(schema):
    """A serializer or view without a docstring of its own gets none, not its base class's notes."""
    base_docs = {
        inspect.cleandoc(value.__doc__)
        for value in vars(api).values()
        if isinstance(value, type) and value.__doc__
    }
    descriptions = [component.get("description") for component in schema["components"]["schemas"].values()]
    descriptions += [operation.get("description") for _, _, operation in _operations(schema)]
    assert base_docs & set(descriptions) == set()


def test_streams_answer_an_event_stream(schema):
    streams = [path for path in schema["paths"] if path.endswith("/events")]
    assert len(streams) == 6
    for path in streams:
        assert list(schema["paths"][path]["get"]["responses"]["200"]["content"]) == ["text/event-stream"]


def test_the_schema_route_serves_yaml_and_json(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")

    as_json = client.get("/api/schema/", {"format": "json"})
    assert as_json.status_code == 200
    assert json.loads(as_json.content)["info"]["title"] == "CSGClaw API"


def test_the_docs_page_loads_only_files_of_this_server(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    references = re.findall(r'(?:src|href)="([^"]*)"', page) + re.findall(r'url: "([^"]*)"', page)
    assert references
    assert "http://" not in page
    assert "https://" not in page
    for reference in references:
        assert reference == "/api/schema/" or reference.startswith("/static/"), reference
        if reference.startswith("/static/"):
            assert finders.find(reference.removeprefix("/static/")), reference


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
@pytest.mark.parametrize("method", ["head", "options", "post", "delete"])
def test_schema_and_docs_serve_get_only(client, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    if method != "head":
        assert response.content == b"method not allowed\n"


@pytest.fixture
def server_token(settings, tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    settings.CSGCLAW_CONFIG = path
    clear_config_cache()
    yield TOKEN
    clear_config_cache()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_follow_the_api_access_rule(client, server_token, path):
    assert client.get(path).status_code == 200
    assert client.get(path, REMOTE_ADDR=REMOTE).status_code == 401
    authorized = client.get(path, REMOTE_ADDR=REMOTE, headers={"Authorization": f"Bearer {server_token}"})
    assert authorized.status_code == 200
