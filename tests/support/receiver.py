"""A notification endpoint for tests: records every request and answers as programmed.

It plays the subscriber's side of Graph's webhooks: the validation handshake (echo the decoded
token as text/plain, or misbehave on purpose) and notification POSTs (answer a status, possibly
late). Plain http on loopback by default; `tls=True` serves https with a certificate from its
own CA (`ca_path`), which the emulator must be told to trust.

    with NotificationReceiver() as receiver:
        receiver.answer_validation("/notify", mode="encoded")
        receiver.answer_notifications("/notify", status=500, times=1)
        url = receiver.url("/notify", code="secret")
        receiver.wait_for(lambda: len(receiver.items("/notify")) >= 2)
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar
from urllib.parse import parse_qs, urlencode

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from devtools.graph_emulator.tls import make_certificates, server_context
from tests.support.polling import wait_for

T = TypeVar("T")


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.raw_query, keep_blank_values=True).items()}

    @property
    def validation_token(self) -> str | None:
        return self.query.get("validationToken")

    @property
    def is_validation(self) -> bool:
        return self.validation_token is not None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int = 202
    delay: float = 0.0


@dataclass
class _ValidationPlan:
    mode: str = "echo"  # echo | encoded | wrong | json | status
    status: int = 200
    delay: float = 0.0


@dataclass
class _PathPlan:
    validation: _ValidationPlan = field(default_factory=_ValidationPlan)
    queued: deque[_Answer] = field(default_factory=deque)
    default: _Answer = field(default_factory=_Answer)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class NotificationReceiver:
    def __init__(self, tls: bool = False, host: str = "127.0.0.1") -> None:
        self.tls = tls
        self.ca_path: str | None = None
        context = None
        if tls:
            self.ca_path, cert, key = make_certificates(tempfile.mkdtemp(prefix="receiver-tls-"))
            context = server_context(cert, key)
        self._server: BaseWSGIServer = make_server(host, 0, self._app, threaded=True, request_handler=_Quiet,
                                                   ssl_context=context)
        self._server.daemon_threads = True
        port = self._server.socket.getsockname()[1]
        self.base_url = f"{'https' if tls else 'http'}://{host}:{port}"
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._plans: dict[str, _PathPlan] = {}
        self._thread: threading.Thread | None = None

    # ---- running ---------------------------------------------------------------------------------------

    def start(self) -> "NotificationReceiver":
        self._thread = threading.Thread(target=self._server.serve_forever, name="notification-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "NotificationReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- programming answers -------------------------------------------------------------------------

    def url(self, path: str = "/notify", **query: str) -> str:
        return self.base_url + path + (f"?{urlencode(query)}" if query else "")

    def _plan(self, path: str) -> _PathPlan:
        return self._plans.setdefault(path, _PathPlan())

    def answer_validation(self, path: str, mode: str = "echo", status: int = 200, delay: float = 0.0) -> None:
        """echo: 200 text/plain with the decoded token (correct). encoded: echoes the token as it
        appeared in the URL. wrong: another text. json: right text, wrong content type.
        status: answers `status` with an empty body. `delay` answers late."""
        with self._lock:
            self._plan(path).validation = _ValidationPlan(mode, status, delay)

    def answer_notifications(self, path: str, status: int = 202, delay: float = 0.0, times: int | None = None) -> None:
        """With `times`, the next `times` notification POSTs get this answer, then the default
        resumes; without, it becomes the default."""
        with self._lock:
            plan = self._plan(path)
            if times is None:
                plan.default = _Answer(status, delay)
            else:
                plan.queued.extend(_Answer(status, delay) for _ in range(times))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._plans.clear()

    # ---- what arrived ------------------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def validations(self, path: str | None = None) -> list[ReceivedRequest]:
        return [r for r in self.requests(path) if r.is_validation]

    def notifications(self, path: str | None = None) -> list[ReceivedRequest]:
        return [r for r in self.requests(path) if not r.is_validation]

    def items(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every notification item received, flattened from the `value` arrays, in arrival order."""
        return [item for request in self.notifications(path) for item in request.json().get("value", [])]

    def wait_for(self, condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
        """`polling.wait_for`, with the number of requests received so far in the failure."""
        try:
            return wait_for(condition, timeout=timeout, interval=interval)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; received {len(self.requests())} requests") from None

    # ---- the WSGI side --------------------------------------------------------------------------------------

    def _app(self, environ, start_response):
        request = Request(environ)
        received = ReceivedRequest(
            method=request.method, path=request.path, raw_query=request.query_string.decode("latin-1"),
            headers={k: v for k, v in request.headers.items()}, body=request.get_data(), received_at=time.monotonic())
        with self._lock:
            self._requests.append(received)
            plan = self._plan(request.path)
            validation = plan.validation
            answer = plan.queued.popleft() if plan.queued else plan.default
        if received.is_validation:
            response = self._validation_response(received, validation)
        else:
            if answer.delay:
                time.sleep(answer.delay)
            response = Response(status=answer.status)
        return response(environ, start_response)

    @staticmethod
    def _validation_response(received: ReceivedRequest, plan: _ValidationPlan) -> Response:
        if plan.delay:
            time.sleep(plan.delay)
        token = received.validation_token or ""
        if plan.mode == "status":
            return Response(status=plan.status)
        if plan.mode == "encoded":
            raw = next((part.split("=", 1)[1] for part in received.raw_query.split("&")
                        if part.startswith("validationToken=")), "")
            return Response(raw, status=200, mimetype="text/plain")
        if plan.mode == "wrong":
            return Response("not the token", status=200, mimetype="text/plain")
        if plan.mode == "json":
            return Response(json.dumps(token), status=200, mimetype="application/json")
        return Response(token, status=200, mimetype="text/plain")
