"""Graph's webhooks, anonymous (Graph sends no function key), at the seed product's paths:

| Method | Route (under /api) | |
|---|---|---|
| POST | microsoft_graph/notifications/notification_url | change notifications -> 202 (400 when malformed) |
| POST | microsoft_graph/notifications/lifecycle_url | lifecycle notifications -> 202 (400 when malformed) |

Both answer Graph's validation handshake (`?validationToken=`) with 200 text/plain and the
decoded token. Items are checked in sync/webhook.py against the cached subscription rows;
accepted ones are queued as ids only (graph-notifications / graph-lifecycle), rejected ones are
counted and logged, and the answer is 202 even when every item was refused, so a forger learns
nothing. The answer waits on one queue send per 50 items and on no Table read per item.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from functions import room_context
from sync import logcontext, webhook

log = logging.getLogger(__name__)

bp = func.Blueprint()

MAX_TOKEN = 4096


def _handshake(req: func.HttpRequest) -> func.HttpResponse | None:
    token = req.params.get("validationToken")
    if token is None:
        return None
    if len(token) > MAX_TOKEN:
        return _bad(ValueError(f"validationToken is over {MAX_TOKEN} characters"))
    return func.HttpResponse(token, status_code=200, mimetype="text/plain")


def _bad(problem: Exception) -> func.HttpResponse:
    log.warning("webhook post refused: %s", problem)
    body = json.dumps({"error": {"code": "invalid_notification", "message": str(problem)}})
    return func.HttpResponse(body, status_code=400, mimetype="application/json")


def _receive(req: func.HttpRequest, check, queue: str, what: str) -> func.HttpResponse:
    """One correlation id per post, on its log lines and in the messages it queues (the workers
    log under it too)."""
    with logcontext.bind(correlation_id=logcontext.correlation_from_headers(req.headers)) as bound:
        return _check_and_queue(req, check, queue, what, bound["correlation_id"])


def _check_and_queue(req: func.HttpRequest, check, queue: str, what: str, correlation_id: str) -> func.HttpResponse:
    answer = _handshake(req)
    if answer is not None:
        return answer
    try:
        items = webhook.parse_post(req.get_body())
    except webhook.BadNotificationPost as problem:
        return _bad(problem)
    checked = check(items, room_context.subscription_cache().get)
    if checked.rejected:
        log.warning("%s: %d item(s) rejected %s", what, sum(checked.rejected.values()), checked.rejected)
    publisher = room_context.publisher(queue)
    for message in webhook.messages_of(checked.accepted):
        publisher.send({**message, "correlation_id": correlation_id})
    if checked.accepted:
        log.info("%s: %d item(s) queued", what, len(checked.accepted))
    return func.HttpResponse(status_code=202)


@bp.function_name("graph_notifications")
@bp.route(route="microsoft_graph/notifications/notification_url", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
def notifications(req: func.HttpRequest) -> func.HttpResponse:
    return _receive(req, webhook.check_changes, room_context.NOTIFICATIONS_QUEUE, "change notifications")


@bp.function_name("graph_lifecycle")
@bp.route(route="microsoft_graph/notifications/lifecycle_url", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
def lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    return _receive(req, webhook.check_lifecycle, room_context.LIFECYCLE_QUEUE, "lifecycle notifications")
