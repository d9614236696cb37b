"""Routing shared by every Graph area: werkzeug rules matched on the raw (still percent-encoded)
path, so ids containing `/`, `+` or `=` survive; request ids; per-endpoint request counts;
middleware ("guards") for throttling and fault injection; Graph's error envelope."""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from devtools.graph_emulator.errors import GraphError, error_response
from devtools.graph_emulator.state import World

log = logging.getLogger("graph_emulator")

Handler = Callable[["Ctx"], Response]

# What Graph sends with every successful OData answer (the docs' recorded responses, e.g. the
# delta-query samples); error envelopes stay plain `application/json`, as in the throttling page.
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
ODATA_VERSION = "4.0"


@dataclass
class Ctx:
    """One request as an area handler sees it."""
    request: Request
    world: World
    params: dict[str, str]
    rule: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    caller: Any = None  # set by identity.authorize
    # Set by $batch for its inner requests, so guards can tell them apart.
    in_batch: bool = False
    # Inside $batch: the batch's client-request-id, which inner answers carry.
    batch_client_request_id: str | None = None

    @property
    def client_request_id(self) -> str | None:
        return self.batch_client_request_id or self.request.headers.get("client-request-id")

    def json(self) -> Any:
        """The JSON body, or a Graph-style 400 naming the problem."""
        raw = self.request.get_data(cache=True)
        if not raw:
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise GraphError(400, "BadRequest", f"Unable to read JSON request payload: {exc}") from None

    def prefer(self, name: str) -> str | None:
        """Value of one `Prefer` preference (headers may repeat or be comma-separated)."""
        for header in self.request.headers.getlist("Prefer"):
            for part in header.split(","):
                key, _, value = part.strip().partition("=")
                if key.strip().lower() == name.lower():
                    return value.strip().strip('"') if value else ""
        return None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def no_content(status: int = 204) -> Response:
    return Response(status=status)


Guard = Callable[[Ctx, Handler], Response]


def raw_path(request: Request) -> str:
    """The path as sent, still percent-encoded and without the query (what routes match)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    return raw.split("?", 1)[0]


class EmulatorApp:
    """WSGI app. Areas call `route()` to add endpoints and `add_guard()` for middleware."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.url_map = Map(strict_slashes=False, merge_slashes=False)
        self.handlers: dict[str, Handler] = {}
        self.guards: list[Guard] = []

    def route(self, path: str, methods: list[str], handler: Handler, name: str | None = None) -> None:
        endpoint = name or f"{','.join(methods)} {path}"
        # One name may serve several paths (aliases such as `delta()` next to `delta`) as long as
        # they share the handler, so request counts stay per endpoint, not per spelling.
        if endpoint in self.handlers and self.handlers[endpoint] is not handler:
            raise ValueError(f"duplicate emulator endpoint {endpoint}")
        self.url_map.add(Rule(path, methods=methods, endpoint=endpoint))
        self.handlers[endpoint] = handler

    def add_guard(self, guard: Guard) -> None:
        self.guards.append(guard)

    def dispatch(self, request: Request, in_batch: bool = False, request_id: str | None = None,
                 client_request_id: str | None = None) -> Response:
        """Answers one request. `$batch` passes its own ids: Graph stamps every inner answer,
        errors included, with the batch's request-id and client-request-id."""
        path = raw_path(request)
        adapter = self.url_map.bind("emulator", path_info=path, url_scheme="https")
        request_id = request_id or str(uuid.uuid4())
        client_request_id = client_request_id or request.headers.get("client-request-id")
        try:
            endpoint, params = adapter.match(method=request.method)
        except NotFound:
            err = GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.") \
                if path.startswith("/v1.0/") else GraphError(404, "NotFound", f"No route {path}")
            self._count(f"{request.method} <unknown>")
            return self._finish(error_response(err, request_id, client_request_id), path, request_id,
                                client_request_id)
        except MethodNotAllowed:
            err = GraphError(405, "Request_BadRequest", f"The HTTP method '{request.method}' is not allowed for '{path}'.")
            return self._finish(error_response(err, request_id, client_request_id), path, request_id,
                                client_request_id)
        params = {k: unquote(v) if isinstance(v, str) else v for k, v in params.items()}
        self._count(endpoint)
        ctx = Ctx(request=request, world=self.world, params=params, rule=endpoint,
                  request_id=request_id, in_batch=in_batch, batch_client_request_id=client_request_id)
        handler = self.handlers[endpoint]

        def call(c: Ctx) -> Response:
            try:
                return handler(c)
            except GraphError as err:
                return error_response(err, c.request_id, c.client_request_id)

        chain: Handler = call
        for guard in reversed(self.guards):
            chain = (lambda g, nxt: (lambda c: g(c, nxt)))(guard, chain)
        try:
            response = chain(ctx)
        except GraphError as err:
            response = error_response(err, request_id, client_request_id)
        except Exception:  # noqa: BLE001 - an emulator bug must still answer like a server would
            log.exception("emulator handler failed: %s", endpoint)
            response = error_response(GraphError(500, "InternalServerError", "Emulator failure."),
                                      request_id, client_request_id)
        return self._finish(response, path, request_id, client_request_id)

    def _count(self, endpoint: str) -> None:
        # `counter[key] += 1` is a read then a write: concurrent requests could lose counts.
        with self.world.lock:
            self.world.request_counts[endpoint] += 1

    @staticmethod
    def _finish(response: Response, path: str, request_id: str, client_request_id: str | None = None) -> Response:
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id or request_id)
        if path.startswith("/v1.0/") and response.status_code < 400 and response.mimetype == "application/json":
            response.headers["Content-Type"] = ODATA_JSON
            response.headers.setdefault("OData-Version", ODATA_VERSION)
        return response

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)
