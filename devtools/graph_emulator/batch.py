"""JSON batching: `POST /v1.0/$batch` (json-batching, throttling-limits).

Each inner request is dispatched through the same app (so routing, faults, throttling and
request counts apply to it as to any request) with the batch's own Authorization header; an
inner request cannot bring its own. What the docs and real responses fix:
- at most 20 requests; ids are strings, unique ignoring case; urls are relative to the
  version (`/users/x` or `users/x`); a body needs `headers` with Content-Type, and a write
  (POST/PUT/PATCH) needs both. Breaking any of these fails the whole batch with 400.
- `dependsOn` names one earlier request; a batch is either fully parallel (no dependsOn) or
  sequential (every request after the first depends on an earlier one), otherwise 400
  "Batch should be either fully sequential or fully parallel." Sequential batches run one
  request at a time; a request whose dependency did not succeed (non-2xx) gets 424.
- parallel batches run at most 4 requests at once, as Graph does towards Outlook.
- the batch answers 200 with `responses` in any order (matched by `id`); throttled items
  carry 429 and their own Retry-After; every item, error envelopes included, carries the
  batch's own request-id and client-request-id.

Control API: `GET /_control/batch` and `PUT /_control/batch` `{"response_order":
"shuffled"|"reversed"|"request"|"completion"}`. The default, "shuffled", always differs from
request order for two or more items, so clients that match by position fail here first.
"""
from __future__ import annotations

import base64
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response
from devtools.graph_emulator.errors import bad_request, error_body
from devtools.graph_emulator.identity import authorize

SERVICE = "batch"
MAX_REQUESTS = 20
PARALLEL_REQUESTS = 4
WRITE_METHODS = {"POST", "PUT", "PATCH"}
RESPONSE_ORDERS = ("shuffled", "reversed", "request", "completion")
NOT_SEQUENTIAL_OR_PARALLEL = "Batch should be either fully sequential or fully parallel."
# Response headers that describe the HTTP exchange rather than the item (the batch response
# carries the request ids).
_TRANSPORT_HEADERS = {"content-length", "connection", "transfer-encoding", "request-id", "client-request-id"}


@dataclass
class BatchItem:
    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    has_body: bool
    depends_on: str | None


@dataclass
class ItemResult:
    id: str
    status: int
    headers: dict[str, str]
    body: Any = None
    has_body: bool = False

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"id": self.id, "status": self.status, "headers": self.headers}
        if self.has_body:
            view["body"] = self.body
        return view


class BatchSettings:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.response_order = "shuffled"
        self._batches = 0

    def next_shuffle_seed(self) -> int:
        with self.lock:
            self._batches += 1
            return self._batches


# ---- parsing and validation --------------------------------------------------------------------

def parse_batch(payload: Any) -> list[BatchItem]:
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise bad_request("Invalid batch payload format.")
    raw_items = payload["requests"]
    if not raw_items:
        raise bad_request("Invalid batch payload format. The batch contains no requests.")
    if len(raw_items) > MAX_REQUESTS:
        raise bad_request("Number of requests inside batch exceeds the limit.")
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(raw_items):
        item = _parse_item(raw)
        if item.id.lower() in seen:
            raise bad_request(f"Request Id '{item.id}' is used more than once. Ids must be unique in a batch.")
        if item.depends_on is not None and item.depends_on.lower() not in seen:
            raise bad_request(f"Invalid dependency for request Id : {item.id}.")
        seen[item.id.lower()] = position
        items.append(item)
    if any(i.depends_on for i in items) and any(i.depends_on is None for i in items[1:]):
        raise bad_request(NOT_SEQUENTIAL_OR_PARALLEL)
    return items


def _parse_item(raw: Any) -> BatchItem:
    if not isinstance(raw, dict):
        raise bad_request("Invalid batch payload format. Each request must be an object.")
    item_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
    if not isinstance(item_id, str) or not item_id:
        raise bad_request("Invalid batch payload format. Each request needs a string 'id'.")
    if not isinstance(method, str) or not method:
        raise bad_request(f"Invalid batch payload format. Request Id : {item_id} has no 'method'.")
    if not isinstance(url, str) or not url:
        raise bad_request(f"Invalid batch payload format. Request Id : {item_id} has no 'url'.")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise bad_request(f"Invalid batch payload format. Headers of request Id : {item_id} must map names to strings.")
    has_body = "body" in raw and raw["body"] is not None
    has_content_type = any(name.lower() == "content-type" for name in headers)
    if (has_body or method.upper() in WRITE_METHODS) and not (has_body and has_content_type):
        raise bad_request(f"Write request id : {item_id} does not contain Content-Type header or body.")
    depends_on = raw.get("dependsOn")
    if depends_on is not None:
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            raise bad_request(f"Invalid dependency for request Id : {item_id}.")
        if len(depends_on) > 1:
            raise bad_request(NOT_SEQUENTIAL_OR_PARALLEL)
        depends_on = depends_on[0] if depends_on else None
    return BatchItem(id=item_id, method=method.upper(), url=url, headers=headers,
                     body=raw.get("body"), has_body=has_body, depends_on=depends_on)


# ---- running the items -------------------------------------------------------------------------

class BatchRunner:
    """Runs the items of one batch against `app` with the batch's credentials."""

    def __init__(self, app: EmulatorApp, outer: Ctx) -> None:
        self.app = app
        self.outer = outer
        self.lock = threading.Lock()
        self.finished: list[ItemResult] = []  # completion order

    def run(self, items: list[BatchItem]) -> list[ItemResult]:
        if any(item.depends_on for item in items):
            outcome: dict[str, ItemResult] = {}
            for item in items:
                dependency = outcome.get(item.depends_on.lower()) if item.depends_on else None
                if dependency is not None and not 200 <= dependency.status < 300:
                    result = self._failed_dependency(item)
                else:
                    result = self._run_one(item)
                outcome[item.id.lower()] = result
        else:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(items)),
                                    thread_name_prefix="graph-batch") as pool:
                list(pool.map(self._run_one, items))
        return list(self.finished)

    def _record(self, result: ItemResult) -> ItemResult:
        with self.lock:
            self.finished.append(result)
        return result

    def _error(self, item: BatchItem, status: int, code: str, message: str) -> ItemResult:
        body = error_body(code, message, self.outer.request_id, self.outer.client_request_id)
        return self._record(ItemResult(item.id, status, {"Content-Type": "application/json"}, body, True))

    def _failed_dependency(self, item: BatchItem) -> ItemResult:
        return self._error(item, 424, "FailedDependency",
                           f"The request depends on request '{item.depends_on}', which did not succeed.")

    def _run_one(self, item: BatchItem) -> ItemResult:
        url = item.url
        if "://" in url or url.lower().startswith(("http:", "https:")):
            return self._error(item, 400, "BadRequest", "Invalid request URL. Batch request URLs must be relative.")
        relative = url if url.startswith("/") else "/" + url
        if relative.split("?", 1)[0].lower().rstrip("/") in ("/$batch", "/%24batch"):
            return self._error(item, 400, "BadRequest", "Nested batch requests are not supported.")
        # dispatch answers every failure (GraphError included) as a response of its own.
        response = self.app.dispatch(self._inner_request(item, "/v1.0" + relative), in_batch=True,
                                     request_id=self.outer.request_id,
                                     client_request_id=self.outer.client_request_id or self.outer.request_id)
        return self._record(_item_result(item.id, response))

    def _inner_request(self, item: BatchItem, target: str) -> Request:
        outer = self.outer.request
        headers = {name: value for name, value in item.headers.items() if name.lower() != "authorization"}
        if outer.headers.get("Authorization"):
            headers["Authorization"] = outer.headers["Authorization"]
        data = _encode_body(item) if item.has_body else None
        builder = EnvironBuilder(path=target, method=item.method, headers=headers, data=data,
                                 base_url=outer.host_url)
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        # RAW_URI/REQUEST_URI stay percent-encoded (EnvironBuilder copies `path`), so ids with
        # `/` route like they do over HTTP. Sharing the socket lets a fault drop the connection.
        if "werkzeug.socket" in outer.environ:
            environ["werkzeug.socket"] = outer.environ["werkzeug.socket"]
        return Request(environ)


def _encode_body(item: BatchItem) -> bytes:
    content_type = next((v for k, v in item.headers.items() if k.lower() == "content-type"), "")
    body = item.body
    if "json" in content_type.lower() or not isinstance(body, str):
        return json.dumps(body).encode("utf-8")
    try:  # binary bodies travel base64-encoded
        return base64.b64decode(body, validate=True)
    except ValueError:
        return body.encode("utf-8")


def _item_result(item_id: str, response: Response) -> ItemResult:
    headers = {name: value for name, value in response.headers.items() if name.lower() not in _TRANSPORT_HEADERS}
    raw = response.get_data()
    if not raw:
        return ItemResult(item_id, response.status_code, headers)
    mimetype = (response.mimetype or "").lower()
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            return ItemResult(item_id, response.status_code, headers, json.loads(raw), True)
        except ValueError:
            pass
    if mimetype.startswith("text/"):
        return ItemResult(item_id, response.status_code, headers, raw.decode("utf-8", "replace"), True)
    return ItemResult(item_id, response.status_code, headers, base64.b64encode(raw).decode("ascii"), True)


def _ordered(results: list[ItemResult], items: list[BatchItem], settings: BatchSettings) -> list[ItemResult]:
    by_id = {r.id.lower(): r for r in results}
    in_request_order = [by_id[i.id.lower()] for i in items]
    order = settings.response_order
    if order == "completion":
        return results
    if order == "request":
        return in_request_order
    if order == "reversed":
        return list(reversed(in_request_order))
    shuffled = list(in_request_order)
    random.Random(settings.next_shuffle_seed()).shuffle(shuffled)
    if len(shuffled) > 1 and shuffled == in_request_order:
        shuffled = shuffled[1:] + shuffled[:1]
    return shuffled


# ---- routes ------------------------------------------------------------------------------------

def register(app: EmulatorApp) -> None:
    settings: BatchSettings = app.world.services.setdefault(SERVICE, BatchSettings())

    def batch(ctx: Ctx) -> Response:
        authorize(ctx, ())  # a valid token is needed; each item checks its own permissions
        items = parse_batch(ctx.json())
        results = BatchRunner(app, ctx).run(items)
        return json_response({"responses": [r.view() for r in _ordered(results, items, settings)]})

    def control_get(ctx: Ctx) -> Response:
        return json_response({"response_order": settings.response_order})

    def control_put(ctx: Ctx) -> Response:
        body = ctx.json()
        order = body.get("response_order") if isinstance(body, dict) else None
        if order not in RESPONSE_ORDERS:
            raise bad_request(f"response_order must be one of {', '.join(RESPONSE_ORDERS)}.")
        settings.response_order = order
        return json_response({"response_order": order})

    app.route("/v1.0/$batch", ["POST"], batch, name="batch")
    app.route("/_control/batch", ["GET"], control_get, name="control.batch.get")
    app.route("/_control/batch", ["PUT"], control_put, name="control.batch.put")
