"""What the app declares, read from its own function metadata (`app.get_functions()`), the same
indexing the Python worker does: each function's trigger, its output bindings and its callable.

Supported here: HTTP, queue and timer triggers; queue and HTTP output bindings. Anything else
stops the start with a line naming the function and the binding, rather than being ignored.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable

HTTP_TRIGGER = "httpTrigger"
QUEUE_TRIGGER = "queueTrigger"
TIMER_TRIGGER = "timerTrigger"
HTTP_OUTPUT = "http"
QUEUE_OUTPUT = "queue"
RETURN_NAME = "$return"
DEFAULT_CONNECTION = "AzureWebJobsStorage"

_SKIPPED_TRIGGERS = {"warmupTrigger"}  # no local meaning
_OUT = 1  # BindingDirection.OUT.value; Binding.direction gives the plain value


class MetadataError(ValueError):
    """The app declares something the local host cannot run; the message names it."""


def _plain(value: Any) -> Any:
    """Enum members (AuthLevel, HttpMethod) as their plain values."""
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True)
class OutputBinding:
    name: str
    type: str
    queue_name: str | None = None
    connection: str = DEFAULT_CONNECTION


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    trigger_type: str
    trigger_name: str
    function: Callable[..., Any]
    outputs: tuple[OutputBinding, ...] = ()
    # HTTP
    route: str | None = None
    methods: tuple[str, ...] | None = None
    auth_level: str = "function"
    # Queue
    queue_name: str | None = None
    connection: str = DEFAULT_CONNECTION
    # Timer
    schedule: str | None = None
    run_on_startup: bool = False


def _output(function_name: str, binding) -> OutputBinding:
    kind = binding.type
    if kind == QUEUE_OUTPUT:
        queue_name = getattr(binding, "queue_name", None)
        if not queue_name:
            raise MetadataError(f"function {function_name}: queue output '{binding.name}' has no queue_name")
        return OutputBinding(binding.name, kind, queue_name, getattr(binding, "connection", None) or DEFAULT_CONNECTION)
    if kind == HTTP_OUTPUT:
        return OutputBinding(binding.name, kind)
    raise MetadataError(
        f"function {function_name}: {kind} binding '{binding.name}' is not supported by the local host "
        "(supported: http/queue/timer triggers, queue and http outputs)"
    )


def _describe(function) -> FunctionInfo | None:
    name = function.get_function_name()
    trigger = function.get_trigger()
    if trigger is None:
        raise MetadataError(f"function {name} has no trigger")
    if trigger.type in _SKIPPED_TRIGGERS:
        return None
    outputs = []
    for binding in function.get_bindings():
        if binding is trigger:
            continue
        if binding.direction != _OUT:
            raise MetadataError(
                f"function {name}: {binding.type} input binding '{binding.name}' is not supported by the local host"
            )
        outputs.append(_output(name, binding))
    common = dict(name=name, trigger_type=trigger.type, trigger_name=trigger.name,
                  function=function.get_user_function(), outputs=tuple(outputs))
    if trigger.type == HTTP_TRIGGER:
        methods = getattr(trigger, "methods", None)
        return FunctionInfo(
            **common,
            route=getattr(trigger, "route", None) or name,
            methods=tuple(str(_plain(m)).upper() for m in methods) if methods else None,
            auth_level=str(_plain(getattr(trigger, "auth_level", None)) or "function").lower(),
        )
    if trigger.type == QUEUE_TRIGGER:
        return FunctionInfo(
            **common,
            queue_name=trigger.queue_name,
            connection=getattr(trigger, "connection", None) or DEFAULT_CONNECTION,
        )
    if trigger.type == TIMER_TRIGGER:
        return FunctionInfo(**common, schedule=trigger.schedule, run_on_startup=bool(trigger.run_on_startup))
    raise MetadataError(f"function {name}: trigger type {trigger.type} is not supported by the local host")


def _check_parameters(info: FunctionInfo) -> None:
    """Every parameter of the callable must be fed by a binding (or be `context`)."""
    bound = {info.trigger_name, "context"} | {o.name for o in info.outputs}
    for parameter in inspect.signature(info.function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name not in bound and parameter.default is parameter.empty:
            raise MetadataError(f"function {info.name}: parameter '{parameter.name}' matches no binding")


def read_functions(app) -> list[FunctionInfo]:
    """The app's functions, in registration order, checked for what the local host can run."""
    # get_functions() remembers the names it has seen and would call a second reading a
    # duplicate; forget them first (a real duplicate is still refused).
    if hasattr(app, "functions_bindings"):
        app.functions_bindings = None
    infos = []
    for function in app.get_functions():
        info = _describe(function)
        if info is not None:
            _check_parameters(info)
            infos.append(info)
    return infos


def find_app(module) -> Any:
    """The FunctionApp object of a module: `app` if it is one, else the only one defined."""
    from azure.functions import FunctionRegister

    candidate = getattr(module, "app", None)
    if isinstance(candidate, FunctionRegister):
        return candidate
    apps = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    if len(apps) != 1:
        raise MetadataError(f"module {module.__name__} defines {len(apps)} FunctionApp objects; expected one")
    return apps[0]


def is_app_file(target: str) -> bool:
    """True when `target` names a .py file or a path rather than a module."""
    return target.endswith(".py") or "/" in target or "\\" in target


def app_directory(target: str) -> Path:
    """The folder the app lives in: a file's folder, else the current directory."""
    return Path(target).resolve().parent if is_app_file(target) else Path.cwd()


def import_app_module(target: str):
    """Import the app from a module name (`function_app`) or a file path (`some/dir/function_app.py`).

    A file's folder goes first on sys.path, so the app imports its own packages as it would
    from the root of a deployed Functions app.
    """
    if is_app_file(target):
        path = Path(target).resolve()
        if not path.is_file():
            raise MetadataError(f"app file {target} does not exist")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(target)
