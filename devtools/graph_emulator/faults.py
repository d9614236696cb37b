"""Injected faults: the failures a Graph client must survive, on demand.

Rules are matched against every request except the control API, including the Entra token and
discovery endpoints and the inner requests of a `$batch`. The first active rule that matches
fires. A rule can
- answer with an error status (Graph's 429 body and `Retry-After`; 503 with optional
  `Retry-After`; 504 GatewayTimeout; any other status with a Graph-shaped or, on the identity
  platform, an OAuth-shaped body),
- answer slowly (`delay_ms`): with a `status` it waits, then fails; without one the request is
  processed after the wait, which is spent inside the mailbox's concurrency slot (a slow
  Outlook request is a request in flight),
- drop the connection with no HTTP response at all (`drop_connection`), which clients see as a
  connection error; inside a `$batch` that drops the batch's connection.
A rule fires `count` times and then expires (kept, marked expired, so its hits stay visible),
or forever; `probability` fires it at random (give `seed` for a repeatable sequence).

Control API (no auth):
- `POST /_control/faults` `{"method": "GET"|"*", "path": "<regex>", "match": "regex"|"glob",
  "status": 503, "retry_after": 5|null, "count": 2, "probability": 0.5, "seed": 1,
  "delay_ms": 300, "drop_connection": false, "body": {"code": "...", "message": "..."},
  "tenant": "<id or domain>"}` -> 201 with the rule (`id`, `hits`, `remaining`, `expired`).
  `path` is searched (regex, case-insensitive) in, or matched (glob) against, the request path
  as sent (`/v1.0/users/{id}/events`, `/{tenant}/oauth2/v2.0/token`) and its decoded form.
  A 429 without `retry_after` sends `Retry-After: 1`; `"retry_after": null` sends none; a
  fraction is sent as given, to the millisecond (`2.128`).
- `GET /_control/faults` -> `{"value": [rules]}`; `GET|DELETE /_control/faults/{id}`;
  `DELETE /_control/faults` removes every rule.
"""
from __future__ import annotations

import fnmatch
import json
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from werkzeug.wrappers import Response

from devtools.graph_emulator import throttling
from devtools.graph_emulator.app import Ctx, EmulatorApp, Handler, json_response, no_content, raw_path
from devtools.graph_emulator.control import find_tenant_or_404
from devtools.graph_emulator.errors import GraphError, bad_request, error_response
from devtools.graph_emulator.identity import b64url_decode, bearer_token, oauth_error
from devtools.graph_emulator.state import World

SERVICE = "faults"
DEFAULT_429_RETRY_AFTER = 1

# Graph error codes a status answers with unless the rule gives its own `body`.
_GRAPH_ERRORS = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "The send or update operation could not be performed because "
          "the change key passed in the request does not match the current change key for the item."),
    412: ("PreconditionFailed", "The precondition given in one or more of the request-header fields "
          "evaluated to false."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("InternalServerError", "An internal server error occurred. The operation failed."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway did not receive a response in time."),
}
# OAuth error names the identity platform uses for the same statuses.
_OAUTH_ERRORS = {429: "temporarily_unavailable", 503: "temporarily_unavailable",
                 504: "temporarily_unavailable", 500: "server_error", 401: "invalid_client"}


@dataclass
class FaultRule:
    id: str
    method: str
    path: str
    match: str
    pattern: re.Pattern
    status: int | None
    retry_after: float | None
    count: int | None
    probability: float
    seed: int | None
    delay_ms: int
    drop_connection: bool
    body: dict[str, str] | None
    tenant: str | None
    hits: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def remaining(self) -> int | None:
        return None if self.count is None else max(0, self.count - self.hits)

    @property
    def expired(self) -> bool:
        return self.remaining == 0

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "method": self.method, "path": self.path, "match": self.match,
            "status": self.status, "retry_after": self.retry_after, "count": self.count,
            "remaining": self.remaining, "probability": self.probability, "seed": self.seed,
            "delay_ms": self.delay_ms, "drop_connection": self.drop_connection, "body": self.body,
            "tenant": self.tenant, "hits": self.hits, "expired": self.expired,
        }


def _number(spec: dict, name: str, kind: type, minimum: float, maximum: float | None = None):
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and value != int(value)) or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise bad_request(f"'{name}' must be a {'whole ' if kind is int else ''}number {bound}.")
    return kind(value)


def parse_rule(spec: Any, world: World) -> FaultRule:
    """Builds a rule from the control API's JSON, rejecting anything ambiguous with 400."""
    if not isinstance(spec, dict):
        raise bad_request("A fault rule must be a JSON object.")
    known = {"method", "path", "match", "status", "retry_after", "count", "probability", "seed",
             "delay_ms", "drop_connection", "body", "tenant"}
    unknown = set(spec) - known
    if unknown:
        raise bad_request(f"Unknown fault fields: {', '.join(sorted(unknown))}.")
    method = str(spec.get("method") or "*").upper()
    path = spec.get("path", ".*")
    match = spec.get("match", "regex")
    if not isinstance(path, str) or not path:
        raise bad_request("'path' must be a non-empty string.")
    if match not in ("regex", "glob"):
        raise bad_request("'match' must be 'regex' or 'glob'.")
    try:
        pattern = re.compile(fnmatch.translate(path) if match == "glob" else path, re.IGNORECASE)
    except re.error as exc:
        raise bad_request(f"'path' is not a valid regular expression: {exc}.") from None
    status = _number(spec, "status", int, 100, 599)
    delay_ms = _number(spec, "delay_ms", int, 0, 600_000) or 0
    drop = spec.get("drop_connection", False)
    if not isinstance(drop, bool):
        raise bad_request("'drop_connection' must be true or false.")
    if status is None and not delay_ms and not drop:
        raise bad_request("A fault needs a 'status', a 'delay_ms' or 'drop_connection'.")
    if status is not None and drop:
        raise bad_request("'status' and 'drop_connection' exclude each other.")
    if "retry_after" in spec:
        retry_after = _number(spec, "retry_after", float, 0)
    else:
        retry_after = DEFAULT_429_RETRY_AFTER if status == 429 else None
    probability = _number(spec, "probability", float, 0, 1)
    if probability is None:
        probability = 1.0
    elif probability == 0:
        raise bad_request("'probability' must be greater than 0.")
    seed = _number(spec, "seed", int, -2**63, 2**63)
    body = spec.get("body")
    if body is not None and not (isinstance(body, dict) and set(body) <= {"code", "message"}
                                 and all(isinstance(v, str) for v in body.values())):
        raise bad_request("'body' must be an object with string 'code' and/or 'message'.")
    tenant = spec.get("tenant")
    if tenant is not None:
        tenant = find_tenant_or_404(world, str(tenant)).id
    return FaultRule(
        id=str(uuid.uuid4()), method=method, path=path, match=match, pattern=pattern, status=status,
        retry_after=retry_after, count=_number(spec, "count", int, 1), probability=probability,
        seed=seed, delay_ms=delay_ms, drop_connection=drop, body=body, tenant=tenant,
        rng=random.Random(seed),
    )


class FaultRegistry:
    """The active rules of one World (`world.services["faults"]`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def views(self) -> list[dict[str, Any]]:
        with self.lock:
            return [rule.view() for rule in self.rules]

    def find(self, rule_id: str) -> FaultRule | None:
        with self.lock:
            return next((r for r in self.rules if r.id == rule_id), None)

    def remove(self, rule_id: str) -> bool:
        with self.lock:
            before = len(self.rules)
            self.rules = [r for r in self.rules if r.id != rule_id]
            return len(self.rules) != before

    def clear(self) -> None:
        with self.lock:
            self.rules = []

    def take(self, method: str, paths: tuple[str, ...], tenant_of_request: Callable[[], str | None]) -> FaultRule | None:
        """Finds the first matching live rule and spends one of its shots, atomically."""
        tenant_id: Any = ...
        with self.lock:
            for rule in self.rules:
                if rule.expired or rule.method not in ("*", method):
                    continue
                if not any(_matches(rule, p) for p in paths):
                    continue
                if rule.tenant is not None:
                    if tenant_id is ...:
                        tenant_id = tenant_of_request()
                    if tenant_id != rule.tenant:
                        continue
                if rule.probability < 1.0 and rule.rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None


def _matches(rule: FaultRule, path: str) -> bool:
    return bool(rule.pattern.fullmatch(path) if rule.match == "glob" else rule.pattern.search(path))


# ---- the guard ---------------------------------------------------------------------------------

def _tenant_of_request(ctx: Ctx) -> str | None:
    """The tenant a request is for: the `{tenant}` of identity endpoints, else the token's `tid`."""
    world = ctx.world
    named = ctx.params.get("tenant")
    if named:
        with world.lock:
            tenant = world.find_tenant(named)
        return tenant.id if tenant else None
    parts = (bearer_token(ctx) or "").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        return None
    return claims.get("tid") if isinstance(claims, dict) else None


def _is_graph_path(path: str) -> bool:
    return path.startswith("/v1.0/") or path.startswith("/beta/") or path in ("/v1.0", "/beta")


def _fault_response(ctx: Ctx, rule: FaultRule, path: str) -> Response:
    code, message = _GRAPH_ERRORS.get(rule.status, ("UnknownError", "An error occurred."))
    if rule.body:
        code, message = rule.body.get("code", code), rule.body.get("message", message)
    headers = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = throttling.format_retry_after(rule.retry_after)
    if not _is_graph_path(path):
        return _oauth_error(rule, headers)
    if rule.status == 429:
        return throttling.too_many_requests(ctx, throttling.throttled_error(rule.retry_after, code, message))
    return error_response(GraphError(rule.status, code, message, headers=headers),
                          ctx.request_id, ctx.client_request_id)


def _oauth_error(rule: FaultRule, headers: dict[str, str]) -> Response:
    """The identity platform answers in OAuth's shape, not Graph's."""
    error = (rule.body or {}).get("code") or _OAUTH_ERRORS.get(rule.status, "invalid_request")
    description = (rule.body or {}).get("message") or "The service is temporarily unavailable."
    return oauth_error(rule.status, error, description, headers=headers)


def _drop_connection(ctx: Ctx) -> Response:
    """Closes the client's socket without answering. The server's later write fails quietly
    (werkzeug treats a broken pipe as a dropped connection)."""
    sock = ctx.request.environ.get("werkzeug.socket")
    if sock is None:
        raise GraphError(502, "BadGateway", "The connection was dropped (no socket to close here).")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    return Response(status=502)


def fault_guard(ctx: Ctx, call_next: Handler) -> Response:
    registry: FaultRegistry = ctx.world.services[SERVICE]
    path = raw_path(ctx.request)
    if path.startswith("/_control/") or not registry.rules:
        return call_next(ctx)
    decoded = unquote(path)
    paths = (path,) if decoded == path else (path, decoded)
    rule = registry.take(ctx.request.method, paths, lambda: _tenant_of_request(ctx))
    if rule is None:
        return call_next(ctx)
    delay = rule.delay_ms / 1000.0
    if rule.drop_connection:
        time.sleep(delay)
        return _drop_connection(ctx)
    if rule.status is None:
        if throttling.SERVICE in ctx.world.services:
            ctx.request.environ[throttling.PROCESSING_DELAY_KEY] = delay
        else:
            time.sleep(delay)
        return call_next(ctx)
    time.sleep(delay)
    return _fault_response(ctx, rule, path)


# ---- control API ------------------------------------------------------------------------------

def control_add(ctx: Ctx) -> Response:
    try:
        spec = json.loads(ctx.request.get_data(cache=True) or b"null")
    except ValueError:
        raise bad_request("Body must be JSON.") from None
    rule = ctx.world.services[SERVICE].add(parse_rule(spec, ctx.world))
    return json_response(rule.view(), status=201)


def control_list(ctx: Ctx) -> Response:
    return json_response({"value": ctx.world.services[SERVICE].views()})


def control_clear(ctx: Ctx) -> Response:
    ctx.world.services[SERVICE].clear()
    return no_content()


def control_get(ctx: Ctx) -> Response:
    rule = ctx.world.services[SERVICE].find(ctx.params["rule_id"])
    if rule is None:
        raise GraphError(404, "NotFound", f"No fault rule {ctx.params['rule_id']}.")
    return json_response(rule.view())


def control_delete(ctx: Ctx) -> Response:
    if not ctx.world.services[SERVICE].remove(ctx.params["rule_id"]):
        raise GraphError(404, "NotFound", f"No fault rule {ctx.params['rule_id']}.")
    return no_content()


def register(app: EmulatorApp) -> None:
    app.world.services.setdefault(SERVICE, FaultRegistry())
    app.add_guard(fault_guard)
    app.route("/_control/faults", ["POST"], control_add, name="control.faults.add")
    app.route("/_control/faults", ["GET"], control_list, name="control.faults.list")
    app.route("/_control/faults", ["DELETE"], control_clear, name="control.faults.clear")
    app.route("/_control/faults/<rule_id>", ["GET"], control_get, name="control.faults.get")
    app.route("/_control/faults/<rule_id>", ["DELETE"], control_delete, name="control.faults.delete")
