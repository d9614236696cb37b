"""The OpenAPI description stays true: it validates as OpenAPI 3.1, and its paths, methods,
operation ids and key requirements are exactly the HTTP routes the app registers, both ways.
Fragments written ahead of their routes (api_spec.PENDING) must validate too and must not
describe a route twice."""
from __future__ import annotations

import importlib
import json
import re
import sys

import pytest
from openapi_spec_validator import validate

from functions import context
from functions.api_spec import PENDING, SERVED, document, merge
from functions.api_spec.common import base
from tests.unit.test_function_index import example_environment

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PARAMETER = re.compile(r"\{\*{0,2}([A-Za-z_][A-Za-z0-9_]*)(?::[^{}]*)?[?]?(?:=[^{}]*)?\}")
# The Functions host refuses routes that start with these (its own APIs live there).
RESERVED_ROUTE_PREFIXES = ("admin", "runtime")


@pytest.fixture(scope="module")
def functions(tmp_path_factory):
    environment = example_environment(tmp_path_factory.mktemp("ca") / "ca.pem")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        context.reset()
        module = sys.modules.get("function_app")
        module = importlib.reload(module) if module else importlib.import_module("function_app")
        yield module.app.get_functions()
    context.reset()


def http_routes(functions) -> dict[tuple[str, str], dict]:
    """(OpenAPI path, method) -> {name, auth} for every HTTP trigger the app registers."""
    routes = {}
    for function in functions:
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] != "httpTrigger":
                continue
            path = "/" + PARAMETER.sub(lambda m: "{" + m.group(1) + "}", binding["route"].strip("/"))
            methods = binding.get("methods") or list(METHODS)
            for method in methods:
                routes[(path, method.lower())] = {"name": function.get_function_name(),
                                                  "auth": binding.get("authLevel", "FUNCTION").upper()}
    return routes


def described(spec) -> dict[tuple[str, str], dict]:
    return {(path, method): operation for path, item in spec["paths"].items()
            for method, operation in item.items() if method in METHODS}


@pytest.fixture(scope="module")
def served():
    return document("test")


def test_the_served_document_is_valid_openapi_3_1(served):
    assert served["openapi"].startswith("3.1")
    validate(served)


def test_the_pending_fragments_are_valid_once_merged(served):
    validate(document("test", SERVED + PENDING))


def test_described_routes_are_exactly_the_registered_ones(functions, served):
    registered, documented = set(http_routes(functions)), set(described(served))
    assert sorted(registered - documented) == [], "registered but not described"
    assert sorted(documented - registered) == [], "described but not registered"


def test_operation_ids_are_the_function_names(functions, served):
    routes = http_routes(functions)
    assert {key: op["operationId"] for key, op in described(served).items()} == \
        {key: route["name"] for key, route in routes.items()}


def test_the_key_requirement_matches_each_route_s_auth_level(functions, served):
    routes = http_routes(functions)
    for key, operation in described(served).items():
        anonymous = operation.get("security", served["security"]) == []
        assert anonymous == (routes[key]["auth"] == "ANONYMOUS"), key


def test_pending_fragments_describe_no_route_twice_and_no_registered_route(functions):
    """Fragments written ahead of their routes stay out of the served document until the routes
    exist; once registered they must be served (none is pending today)."""
    merged = merge(base("test"), SERVED + PENDING)  # raises on an operation described twice
    pending = {(path, method) for fragment in PENDING for path, item in fragment["paths"].items() for method in item
               if method in METHODS}
    assert pending <= set(described(merged))
    assert pending.isdisjoint(http_routes(functions)), "a pending route is registered: move its fragment to SERVED"


def test_merging_joins_operations_of_a_path_and_refuses_one_described_twice():
    reads = {"paths": {"/x": {"get": {"responses": {"200": {"description": "x"}}}}}}
    writes = {"paths": {"/x": {"post": {"responses": {"201": {"description": "x"}}}}}}
    assert set(merge(base("test"), [reads, writes])["paths"]["/x"]) == {"get", "post"}
    with pytest.raises(ValueError, match="get of path /x"):
        merge(base("test"), [reads, reads])


def test_no_route_starts_with_a_prefix_the_functions_host_reserves(functions):
    bad = [path for path, _ in http_routes(functions)
           if path.strip("/").lower().startswith(RESERVED_ROUTE_PREFIXES)]
    assert bad == []


def test_the_endpoint_serves_the_document_without_a_key(functions):
    import azure.functions as func

    (openapi,) = [f for f in functions if f.get_function_name() == "openapi"]
    response = openapi.get_user_function()(func.HttpRequest("GET", "http://127.0.0.1/api/openapi.json", body=b""))
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = json.loads(response.get_body())
    assert body["paths"].keys() == document("test")["paths"].keys()
    assert body["info"]["version"] == __import__("sync.version", fromlist=["__version__"]).__version__
