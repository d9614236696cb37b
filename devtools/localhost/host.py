"""LocalHost: the app's HTTP routes, queue triggers and timers, run in this process.

For development and tests only (production is Azure Functions). Everything it serves comes
from the app's own function metadata and host.json; settings (connections, `%NAME%`
references, local keys, poll interval) come from the mapping given, by default os.environ.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from azure.functions.queue import QueueMessage as FunctionQueueMessage

from devtools.localhost import auth, ncrontab
from devtools.localhost.app_settings import resolve_refs
from devtools.localhost.host_config import HostConfig, load_host_config
from devtools.localhost.http_server import HttpFrontend, HttpServer, build_routes
from devtools.localhost.invocation import Invoker
from devtools.localhost.metadata import (HTTP_TRIGGER, QUEUE_OUTPUT, QUEUE_TRIGGER, TIMER_TRIGGER, FunctionInfo,
                                         OutputBinding, read_functions)
from devtools.localhost.queue_runner import QueueRunner, QueueTrigger, trigger_argument
from devtools.localhost.queue_storage import QueueClients, encode_message, output_messages
from devtools.localhost.timer_runner import TimerRunner

log = logging.getLogger("devtools.localhost")

POLL_SETTING = "LOCAL_QUEUE_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 2.0
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class LocalHostError(RuntimeError):
    """The host cannot start; the message is one line naming the cause."""


def _check_queue_name(name: str, where: str) -> str:
    if not _QUEUE_NAME.match(name):
        raise LocalHostError(
            f"{where}: '{name}' is not a valid queue name (3-63 lowercase letters, digits and single dashes)"
        )
    return name


def _poll_seconds(settings: Mapping[str, str], config: HostConfig, given: float | None) -> float:
    if given is None:
        text = settings.get(POLL_SETTING)
        try:
            given = float(text) if text else DEFAULT_POLL_SECONDS
        except ValueError:
            raise LocalHostError(f"{POLL_SETTING} must be a number of seconds, got {text!r}") from None
    if given <= 0:
        raise LocalHostError(f"{POLL_SETTING} must be more than 0 seconds")
    cap = config.queues.max_polling_interval
    return min(given, cap) if cap else given


class LocalHost:
    """Start with `start()` (or `with LocalHost(...) as host:`), stop with `stop()`.

    app: the FunctionApp. port: 0 picks a free one (see `port` / `base_url` after start).
    host_config: a HostConfig, or the path of a host.json (defaults when None).
    settings: where setting names are looked up (default os.environ).
    queue_poll_seconds: overrides LOCAL_QUEUE_POLL_SECONDS (default 2 s).
    """

    def __init__(
        self,
        app,
        port: int = 0,
        *,
        bind: str = "127.0.0.1",
        host_config: HostConfig | str | Path | None = None,
        settings: Mapping[str, str] | None = None,
        queue_poll_seconds: float | None = None,
    ):
        self.app = app
        self.bind = bind
        self.requested_port = port
        self.config = host_config if isinstance(host_config, HostConfig) else load_host_config(host_config)
        self.settings = os.environ if settings is None else settings
        self._poll_given = queue_poll_seconds
        self.functions: list[FunctionInfo] = []
        self._server: HttpServer | None = None
        self._invoker: Invoker | None = None
        self._clients: QueueClients | None = None
        self._queue_runners: list[QueueRunner] = []
        self._timer_runners: list[TimerRunner] = []
        self._output_queues: dict[tuple[str, str], str] = {}
        self._templates: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> "LocalHost":
        try:
            self._start()
        except Exception as exc:
            self.stop()
            if isinstance(exc, LocalHostError):
                raise
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LocalHostError(message) from exc
        return self

    def _start(self) -> None:
        self.functions = read_functions(self.app)
        poll_seconds = _poll_seconds(self.settings, self.config, self._poll_given)
        keys = auth.KeyRing.from_settings(self.settings)
        self._clients = QueueClients(self.settings)
        queue_triggers = self._queue_triggers()
        schedules = self._schedules()
        self._resolve_output_queues()

        self._invoker = Invoker(self._send_output)
        self._invoker.start()

        http_functions = [f for f in self.functions if f.trigger_type == HTTP_TRIGGER]
        routes = build_routes(http_functions, self.config.route_prefix)
        self._templates = {r.info.name: r.template.template for r in routes}
        needs_key = [f.name for f in http_functions if f.auth_level != auth.ANONYMOUS]
        if needs_key and not (keys.function_keys or keys.master_key):
            log.warning("%s and %s are not set: %s will answer 401",
                        auth.FUNCTION_KEYS_SETTING, auth.MASTER_KEY_SETTING, ", ".join(needs_key))
        self._server = HttpServer(HttpFrontend(routes, self._invoker, keys, self.run_on_demand),
                                  host=self.bind, port=self.requested_port)
        self._server.start()

        for trigger in queue_triggers:
            runner = QueueRunner(trigger, self._invoker, self._clients, self.config.queues, poll_seconds)
            runner.start()
            self._queue_runners.append(runner)
        for info, schedule in schedules:
            runner = TimerRunner(info, schedule, self._invoker)
            runner.start()
            self._timer_runners.append(runner)

    def stop(self) -> None:
        """Stop timers, then queue listeners (waiting for running messages), then HTTP."""
        with self._lock:
            timers, self._timer_runners = self._timer_runners, []
            queues, self._queue_runners = self._queue_runners, []
            server, self._server = self._server, None
            invoker, self._invoker = self._invoker, None
            clients, self._clients = self._clients, None
        for runner in timers:
            runner.stop()
        for runner in queues:
            runner.stop()
        if server is not None:
            server.stop()
        if invoker is not None:
            invoker.stop()
        if clients is not None:
            clients.close()

    def __enter__(self) -> "LocalHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what is served ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the local host is not running")
        return self._server.port

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind
        return f"http://{host}:{self.port}"

    def url_for(self, function_name: str) -> str:
        """The URL template of an HTTP function (parameters left as `{name}`)."""
        return f"{self.base_url}/{self._templates[function_name]}"

    def describe(self) -> list[str]:
        """One line per function: HTTP methods and URL, queue name, or schedule."""
        lines = []
        for info in self.functions:
            if info.trigger_type == HTTP_TRIGGER:
                methods = ",".join(info.methods) if info.methods else "ALL"
                lines.append(f"{info.name}: [{methods}] {self.url_for(info.name)}")
        for runner in self._queue_runners:
            lines.append(f"{runner.name}: queueTrigger {runner.trigger.queue_name}")
        for runner in self._timer_runners:
            startup = " (and on startup)" if runner.info.run_on_startup else ""
            lines.append(f"{runner.name}: timerTrigger {runner.schedule.expression} UTC{startup}")
        return lines

    # --- wiring ----------------------------------------------------------------------------

    def _queue_triggers(self) -> list[QueueTrigger]:
        triggers = []
        for info in self.functions:
            if info.trigger_type != QUEUE_TRIGGER:
                continue
            where = f"function {info.name}"
            name = _check_queue_name(resolve_refs(info.queue_name, self.settings, f"queue name of {where}"), where)
            self._clients.check_connection(info.connection)
            triggers.append(QueueTrigger(info, name, info.connection))
        return triggers

    def _schedules(self) -> list[tuple[FunctionInfo, ncrontab.Schedule]]:
        schedules = []
        for info in self.functions:
            if info.trigger_type != TIMER_TRIGGER:
                continue
            try:
                schedules.append((info, ncrontab.parse(ncrontab.resolve_settings(info.schedule, self.settings))))
            except ncrontab.ScheduleError as exc:
                raise LocalHostError(f"function {info.name}: {exc}") from None
        return schedules

    def _resolve_output_queues(self) -> None:
        for info in self.functions:
            for binding in info.outputs:
                if binding.type != QUEUE_OUTPUT:
                    continue
                where = f"function {info.name} output {binding.name}"
                name = resolve_refs(binding.queue_name, self.settings, f"queue name of {where}")
                self._output_queues[(info.name, binding.name)] = _check_queue_name(name, where)
                self._clients.check_connection(binding.connection)

    def _send_output(self, info: FunctionInfo, binding: OutputBinding, value: Any) -> None:
        queue = self._clients.queue(binding.connection, self._output_queues[(info.name, binding.name)])
        for body in output_messages(value, binding.name):
            queue.send_message(encode_message(body, self.config.queues.message_encoding))

    def run_on_demand(self, name: str, text: str) -> str:
        """Start a timer or queue function once, in the background: 'started', 'unknown' or 'not-runnable'."""
        info = next((f for f in self.functions if f.name.lower() == name.lower()), None)
        if info is None:
            return "unknown"
        if info.trigger_type == TIMER_TRIGGER:
            runner = next(r for r in self._timer_runners if r.info is info)
            target = runner.fire_now
        elif info.trigger_type == QUEUE_TRIGGER:
            target = lambda: self._run_queue_function_once(info, text)  # noqa: E731
        else:
            return "not-runnable"
        threading.Thread(target=target, name=f"on-demand-{info.name}", daemon=True).start()
        return "started"

    def _run_queue_function_once(self, info: FunctionInfo, text: str) -> None:
        now = datetime.now(timezone.utc)
        message = FunctionQueueMessage(
            id=str(uuid.uuid4()), body=text.encode("utf-8"), dequeue_count=1, insertion_time=now,
            expiration_time=now + timedelta(days=7), time_next_visible=now, pop_receipt="",
        )
        try:
            self._invoker.call(info, trigger_argument(info, message))
        except Exception:
            log.exception("function %s failed on an on-demand message", info.name)
