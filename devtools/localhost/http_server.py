"""Serving the app's HTTP triggers: routing, methods, keys, and the request/response mapping.

A WSGI application (werkzeug) turns each request into a real `azure.functions.HttpRequest`,
calls the function, and sends its `HttpResponse` back. A function that raises answers 500
with a generic JSON body; the traceback goes to the log. The access log never shows keys.

`POST /admin/functions/{name}` with the master key runs a timer or queue function on demand
(body `{"input": "..."}` for a queue message), like the host's admin API.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import azure.functions as func
from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from devtools.localhost import auth
from devtools.localhost.invocation import Invoker
from devtools.localhost.metadata import FunctionInfo
from devtools.localhost.routing import RouteTemplate, join_route

log = logging.getLogger("devtools.localhost.http")

ADMIN_PREFIX = "/admin/functions/"


@dataclass(frozen=True)
class HttpRoute:
    info: FunctionInfo
    template: RouteTemplate

    @property
    def methods(self) -> tuple[str, ...] | None:
        return self.info.methods

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods


def build_routes(functions: list[FunctionInfo], route_prefix: str) -> list[HttpRoute]:
    """HTTP routes under the prefix, most specific first (literal segments before parameters)."""
    routes = [HttpRoute(info, RouteTemplate(join_route(route_prefix, info.route))) for info in functions]
    return sorted(routes, key=lambda r: r.template.precedence)


def _json_response(status: int, payload: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json", headers=headers)


def _to_wsgi_response(result) -> Response:
    """The function's return value as an HTTP response (HttpResponse, str, or None)."""
    if result is None:
        return Response(status=204)
    if isinstance(result, str):
        return Response(result, status=200, content_type="text/plain; charset=utf-8")
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function must return HttpResponse or str, not {type(result).__name__}")
    headers = Headers()
    for name, value in result.headers.items():
        headers.add(name, value)
    if "content-type" not in headers:
        mimetype = result.mimetype
        headers["Content-Type"] = f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
    return Response(result.get_body(), status=result.status_code, headers=headers)


class HttpFrontend:
    """The WSGI application in front of the functions."""

    def __init__(
        self,
        routes: list[HttpRoute],
        invoker: Invoker,
        keys: auth.KeyRing,
        run_on_demand: Callable[[str, str], str] | None = None,
    ):
        self.routes = routes
        self.invoker = invoker
        self.keys = keys
        self.run_on_demand = run_on_demand

    def __call__(self, environ, start_response):
        request = Request(environ)
        started = time.monotonic()
        response = self.dispatch(request)
        log.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            auth.redact_query(request.full_path.rstrip("?")),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        matches = [(route, params) for route in self.routes if (params := route.template.match(request.path)) is not None]
        if not matches:
            return Response(status=404)
        chosen = next(((route, params) for route, params in matches if route.allows(request.method)), None)
        if chosen is None:
            allowed = sorted({m for route, _ in matches for m in (route.methods or ())})
            return Response(status=405, headers={"Allow": ", ".join(allowed)})
        route, params = chosen
        key = auth.presented_key(request.args, request.headers)
        if not self.keys.allows(route.info.auth_level, key):
            return Response(status=401)
        return self._invoke(route.info, request, params)

    def _invoke(self, info: FunctionInfo, request: Request, route_params: dict) -> Response:
        http_request = func.HttpRequest(
            method=request.method,
            url=request.url,
            headers={name: ", ".join(request.headers.getlist(name)) for name in request.headers.keys()},
            params=request.args.to_dict(),
            route_params=route_params,
            body=request.get_data(),
        )
        try:
            outcome = self.invoker.call(info, http_request)
            return _to_wsgi_response(outcome.http_response)
        except Exception:
            log.exception("function %s failed on %s %s", info.name, request.method, auth.redact_query(request.path))
            return _json_response(500, {"error": "internal server error", "function": info.name})

    def _admin(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(status=405, headers={"Allow": "POST"})
        if not self.keys.allows(auth.ADMIN, auth.presented_key(request.args, request.headers)):
            return Response(status=401)
        name = request.path[len(ADMIN_PREFIX):].strip("/")
        try:
            body = request.get_json(silent=True)
            body = body if isinstance(body, dict) else {}
            outcome = self.run_on_demand(name, str(body.get("input", ""))) if self.run_on_demand else "unknown"
        except Exception:
            log.exception("could not start function %s on demand", name)
            return _json_response(500, {"error": "internal server error"})
        if outcome == "unknown":
            return Response(status=404)
        if outcome == "not-runnable":
            return _json_response(400, {"error": f"function {name} is started by its HTTP route"})
        return Response(status=202)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its own access log (ours redacts keys) and with errors redacted."""

    def log_request(self, code="-", size="-") -> None:
        pass

    def log(self, type: str, message: str, *args) -> None:
        text = message % args if args else message
        getattr(log, "error" if type == "error" else "info")("%s", auth.redact_query(text))


class HttpServer:
    """A threaded server for the frontend, on a port picked at start when 0."""

    def __init__(self, frontend: HttpFrontend, host: str = "127.0.0.1", port: int = 0):
        self.frontend = frontend
        self.host = host
        self.requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the HTTP server is not running")
        return self._server.server_port

    def start(self) -> None:
        try:
            self._server = make_server(self.host, self.requested_port, self.frontend, threaded=True,
                                       request_handler=_QuietHandler)
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="localhost-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server = None
