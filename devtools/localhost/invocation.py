"""Calling a user function the way the Python worker does.

Arguments are bound by name: the trigger's value, a `func.Out` per output binding, and a
`context` when the function asks for one. Coroutine functions run on one shared event loop
(as in the worker, so clients created at import time keep working); plain functions run in
the calling thread. Queue outputs are written only after the function returns normally.
"""
from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

import azure.functions as func

from devtools.localhost.metadata import HTTP_OUTPUT, QUEUE_OUTPUT, RETURN_NAME, FunctionInfo, OutputBinding

T = TypeVar("T")


class OutValue(func.Out, Generic[T]):
    """The object a function sets its output on."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T | None:
        return self._value


class _TraceContext:
    trace_parent = ""
    trace_state = ""
    attributes: dict = {}


class InvocationContext(func.Context):
    """The `context` argument: invocation id, function name and directory."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str):
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._local = threading.local()
        self._local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self):
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self):
        return _TraceContext()

    @property
    def retry_context(self):
        return None


@dataclass
class Outcome:
    """What a successful call produced: the return value and the HTTP response, if any."""

    invocation_id: str
    return_value: Any
    http_response: Any


SendOutput = Callable[[FunctionInfo, OutputBinding, Any], None]


class Invoker:
    """Runs functions; `send_output(info, binding, value)` writes each queue output."""

    def __init__(self, send_output: SendOutput):
        self._send_output = send_output
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="localhost-async", daemon=True)
        self._loop_thread.start()

    def stop(self) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
        self._loop = None

    def call(self, info: FunctionInfo, trigger_value: Any) -> Outcome:
        """Run the function once; exceptions from it propagate to the caller."""
        invocation_id = str(uuid.uuid4())
        outs = {o.name: OutValue() for o in info.outputs if o.name != RETURN_NAME}
        kwargs = {info.trigger_name: trigger_value, **outs}
        parameters = inspect.signature(info.function).parameters
        if "context" in parameters and "context" not in kwargs:
            kwargs["context"] = InvocationContext(invocation_id, info.name, _directory_of(info.function))
        kwargs = {k: v for k, v in kwargs.items() if k in parameters or _takes_kwargs(parameters)}

        result = info.function(**kwargs)
        if inspect.isawaitable(result):
            result = self._await(result)

        http_response = None
        for binding in info.outputs:
            value = result if binding.name == RETURN_NAME else outs[binding.name].get()
            if binding.type == HTTP_OUTPUT:
                http_response = value
            elif binding.type == QUEUE_OUTPUT and value is not None:
                self._send_output(info, binding, value)
        return Outcome(invocation_id, result, http_response)

    def _await(self, awaitable) -> Any:
        if self._loop is None:
            raise RuntimeError("the local host is not running")
        return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self._loop).result()


async def _as_coroutine(awaitable):
    return await awaitable


def _takes_kwargs(parameters) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _directory_of(function) -> str:
    try:
        return str(Path(inspect.getfile(function)).resolve().parent)
    except (TypeError, OSError):
        return ""
