"""The app as the Functions host indexes it.

Each check mirrors something the host or the Python worker refuses (or silently misroutes)
when it loads the app, so a broken blueprint fails here rather than on deployment. The checks
walk `app.get_functions()`, so they cover new blueprints without changes.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions import meta

from functions import context
from sync.settings import SETTING_NAMES, check_ncrontab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_VALUES: dict[str, str] = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
HOST_JSON = json.loads((ROOT / "host.json").read_text())
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SETTING_REFERENCE = re.compile(r"%([^%\s]+)%")
FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
QUEUE_NAME = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def example_environment(ca_bundle: Path) -> dict[str, str]:
    """The example settings, with the emulator's CA file (made at run time) replaced by a real one."""
    ca_bundle.write_text(PEM)
    return dict(EXAMPLE_VALUES, GRAPH_CA_BUNDLE=str(ca_bundle))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    environment = example_environment(tmp_path_factory.mktemp("ca") / "ca.pem")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        context.reset()
        module = sys.modules.get("function_app")
        module = importlib.reload(module) if module else importlib.import_module("function_app")
        yield module.app
    context.reset()


@pytest.fixture(scope="module")
def functions(app):
    return app.get_functions()


def binding_dicts(function) -> list[dict]:
    """Bindings exactly as the host receives them: the function.json the worker reports."""
    return json.loads(function.get_function_json())["bindings"]


def strings_in(value) -> typing.Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def resolve(text: str) -> str:
    return SETTING_REFERENCE.sub(lambda match: EXAMPLE_VALUES.get(match.group(1), match.group(0)), text)


def test_the_app_has_functions_with_unique_valid_names(functions):
    names = [function.get_function_name() for function in functions]
    assert names, "no functions registered"
    assert len(names) == len(set(n.lower() for n in names)), f"duplicate function names: {names}"
    assert [n for n in names if not FUNCTION_NAME.fullmatch(n)] == []


def test_every_function_builds_its_function_json(functions):
    for function in functions:
        assert function.get_bindings(), function.get_function_name()
        for binding in binding_dicts(function):
            assert {"type", "direction", "name"} <= binding.keys(), (function.get_function_name(), binding)


def test_every_function_has_exactly_one_trigger(functions):
    problems = []
    for function in functions:
        triggers = [b for b in binding_dicts(function) if b["type"].endswith("Trigger")]
        if function.get_trigger() is None or len(triggers) != 1:
            problems.append(f"{function.get_function_name()}: {len(triggers)} triggers")
    assert problems == []


def parameter_problems(function) -> list[str]:
    """What the Python worker checks between function.json and the Python signature."""
    name = function.get_function_name()
    user_function = function.get_user_function()
    hints = typing.get_type_hints(user_function)  # the worker resolves annotations the same way
    parameters = inspect.signature(user_function).parameters
    bindings = binding_dicts(function)
    bound = {b["name"] for b in bindings}
    problems = []
    for binding in bindings:
        if binding["name"] == "$return":
            if binding["direction"] != "OUT":
                problems.append(f"{name}: $return must be an output binding")
            continue
        if binding["name"] not in parameters:
            problems.append(f"{name}: binding '{binding['name']}' has no parameter of that name")
        elif binding["direction"] == "OUT" and typing.get_origin(hints.get(binding["name"])) is not func.Out:
            problems.append(f"{name}: output parameter '{binding['name']}' must be annotated func.Out[...]")
    for parameter in parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            problems.append(f"{name}: *args/**kwargs are not bindable")
        elif parameter.name not in bound:
            # The worker passes its invocation context to a parameter called `context`.
            if parameter.name == "context" and hints.get("context", func.Context) is func.Context:
                continue
            problems.append(f"{name}: parameter '{parameter.name}' has no binding")
    return problems


def test_binding_names_match_the_function_parameters(functions):
    assert [p for function in functions for p in parameter_problems(function)] == []


def test_annotations_are_types_the_worker_can_convert(functions):
    registry = meta.get_binding_registry()
    problems = []
    for function in functions:
        hints = typing.get_type_hints(function.get_user_function())
        for binding in binding_dicts(function):
            converter = registry.get(binding["type"])
            if binding["name"] == "$return":
                annotation = hints.get("return")
                check = converter and converter.check_output_type_annotation
            elif binding["direction"] == "OUT":
                annotation = hints.get(binding["name"])
                if typing.get_origin(annotation) is not func.Out:
                    continue  # reported by the parameter check
                annotation = typing.get_args(annotation)[0]
                check = converter and converter.check_output_type_annotation
            else:
                annotation = hints.get(binding["name"])
                check = converter and converter.check_input_type_annotation
            if annotation is None:
                continue
            accepted = check(annotation) if check else annotation in (str, bytes)
            if not accepted:
                problems.append(f"{function.get_function_name()}: {binding['name']} cannot be {annotation}")
    assert problems == []


def test_every_setting_a_binding_uses_is_in_the_example_settings(functions):
    problems = []
    for function in functions:
        for binding in binding_dicts(function):
            for text in strings_in(binding):
                for setting in SETTING_REFERENCE.findall(text):
                    if setting not in EXAMPLE_VALUES:
                        problems.append(f"{function.get_function_name()}: %{setting}% is not in the example settings")
            connection = binding.get("connection")
            if connection and not any(k == connection or k.startswith(connection + "__") for k in EXAMPLE_VALUES):
                problems.append(f"{function.get_function_name()}: connection {connection} is not in the example settings")
    assert problems == []


def test_every_setting_the_app_reads_is_in_the_example_settings():
    assert sorted(set(SETTING_NAMES) - EXAMPLE_VALUES.keys()) == []
    assert EXAMPLE_VALUES["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_timer_schedules_are_valid_ncrontab(functions):
    problems = []
    for function in functions:
        for binding in binding_dicts(function):
            if binding["type"] != "timerTrigger":
                continue
            schedule = resolve(binding["schedule"])
            try:
                check_ncrontab(schedule)
            except ValueError as problem:
                problems.append(f"{function.get_function_name()}: schedule {binding['schedule']}: {problem}")
    assert problems == []


def test_queue_names_are_valid(functions):
    queues = [b for f in functions for b in binding_dicts(f) if b["type"] in ("queue", "queueTrigger")]
    assert [b["queueName"] for b in queues if not QUEUE_NAME.fullmatch(resolve(b["queueName"]))] == []


def test_http_routes_do_not_collide(functions):
    prefix = HOST_JSON["extensions"]["http"]["routePrefix"]
    routes = []  # (function, route, methods or None for every method)
    problems = []
    for function in functions:
        for binding in binding_dicts(function):
            if binding["type"] == "httpTrigger":
                route = binding["route"].strip("/").lower()
                if route == prefix or route.startswith(prefix + "/"):
                    problems.append(f"{function.get_function_name()}: route already starts with /{prefix}")
                methods = {m.upper() for m in binding.get("methods") or []} or None
                routes.append((function.get_function_name(), route, methods))
    for index, (name, route, methods) in enumerate(routes):
        for other, other_route, other_methods in routes[index + 1:]:
            if route == other_route and (methods is None or other_methods is None or methods & other_methods):
                problems.append(f"{name} and {other} both serve /{route}")
    assert problems == []


def test_health_is_an_anonymous_get_and_everything_else_needs_a_key_by_default(functions, app):
    assert app.auth_level == func.AuthLevel.FUNCTION
    (health,) = [f for f in functions if f.get_function_name() == "health"]
    trigger = binding_dicts(health)[0]
    assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == ("health", ["GET"], "ANONYMOUS")


# -- host.json --------------------------------------------------------------------------------

def test_host_json_declares_the_runtime_and_extension_bundle():
    assert HOST_JSON["version"] == "2.0"
    assert HOST_JSON["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert HOST_JSON["functionTimeout"] == "00:10:00"
    assert HOST_JSON["extensions"]["http"]["routePrefix"] == "api"


def test_host_json_queue_settings():
    assert HOST_JSON["extensions"]["queues"] == {
        "maxPollingInterval": "00:00:02",
        "visibilityTimeout": "00:00:30",
        "batchSize": 16,
        "maxDequeueCount": 5,
        "messageEncoding": "base64",
    }


# -- importing the app --------------------------------------------------------------------------

NETWORK_DENIED_IMPORT = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError("importing the app tried to use the network")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
import function_app
print(",".join(sorted(f.get_function_name() for f in function_app.app.get_functions())))
"""


def import_app_in_fresh_process(environment: dict[str, str]) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and k not in EXAMPLE_VALUES}
    return subprocess.run(
        [sys.executable, "-c", NETWORK_DENIED_IMPORT],
        cwd=ROOT, env={**inherited, **environment}, capture_output=True, text=True, timeout=120,
    )


def test_importing_the_app_needs_no_network(tmp_path):
    result = import_app_in_fresh_process(example_environment(tmp_path / "ca.pem"))
    assert result.returncode == 0, result.stderr
    assert "health" in result.stdout.strip().split(",")


def test_a_bad_setting_stops_the_app_from_loading_and_names_it(tmp_path):
    environment = example_environment(tmp_path / "ca.pem")
    del environment["PUBLIC_BASE_URL"]
    result = import_app_in_fresh_process(environment)
    assert result.returncode != 0
    assert "SettingsError: PUBLIC_BASE_URL: not set" in result.stderr
    assert environment["SECRET_ENCRYPTION_KEY"] not in result.stderr
