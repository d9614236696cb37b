"""Queue workers and timers of the room sync.

| trigger | does |
|---|---|
| queue graph-notifications | each item: re-read the room event and apply it (sync/inbound.py) |
| queue graph-lifecycle | reauthorize / recreate + resync / resync (sync/subscriptions.py) |
| queue calendar-resync | a calendarView delta round of one room (sync/resync.py) |
| queue <each>-poison | copy the message to `deadletters` with the last error noted for it (functions/failures.py) |
| timer SUBSCRIPTION_RENEWAL_SCHEDULE | renew subscriptions that are due; queue the scheduled resyncs; forget day-old failure notes |

Graph throttling (and a change that must wait for the platform's own meeting to be linked)
puts the remaining work back on the queue, hidden for Retry-After, and completes the message:
raising would spend the dequeue count on a wait Graph asked for. Anything else raises, so the
host retries and finally moves the message to the poison queue, from where it is kept.
"""
from __future__ import annotations

import json
import logging
import math
from datetime import timedelta

import azure.functions as func

from functions import room_context
from functions.failures import remembers_failures
from graph import Throttled
from sync import logcontext
from sync.inbound import Deferred
from sync.model import utc_now

log = logging.getLogger(__name__)

bp = func.Blueprint()

MAX_DEFERRALS = 20
FAILURE_NOTES_KEPT = timedelta(days=1)  # a message that failed and then succeeded leaves a note this long
POISONED_QUEUES = ("graph-notifications", "graph-lifecycle", "calendar-resync", "user-sync", "booking-changes",
                   "leaver-releases",
                   "integration-purge")


def _json_message(message: func.QueueMessage, what: str) -> dict:
    try:
        body = json.loads(message.get_body())
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{what} message {message.id} is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError(f"{what} message {message.id} is not a JSON object")
    return body


def _defer(queue: str, body: dict, seconds: float, why: str) -> None:
    deferrals = int(body.get("deferrals") or 0) + 1
    if deferrals > MAX_DEFERRALS:
        raise RuntimeError(f"{queue}: deferred {MAX_DEFERRALS} times ({why}); giving up")
    delay = max(1, min(3600, math.ceil(seconds)))
    room_context.publisher(queue).send({**body, "deferrals": deferrals}, delay_seconds=delay)
    log.info("%s: work deferred %d s (%s)", queue, delay, why)


@bp.function_name("room_change_worker")
@bp.queue_trigger(arg_name="message", queue_name=room_context.NOTIFICATIONS_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(room_context.NOTIFICATIONS_QUEUE)
def room_change_worker(message: func.QueueMessage) -> None:
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(None, message.id)):
        _apply_changes(message)


def _apply_changes(message: func.QueueMessage) -> None:
    body = _json_message(message, "graph-notifications")
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(body, message.id)):
        _apply_items(message, body)


def _apply_items(message: func.QueueMessage, body: dict) -> None:
    items = body.get("items")
    if not isinstance(items, list):
        raise ValueError(f"graph-notifications message {message.id} has no items list")
    inbound = room_context.inbound()
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in
                                                 ("integration_id", "asset_id", "event_id")):
            log.error("graph-notifications message %s: item %d malformed, skipped", message.id, position)
            continue
        with logcontext.bind(**logcontext.ids_of(item)):
            try:
                inbound.handle_change(item["integration_id"], item["asset_id"], item["event_id"])
            except Throttled as throttled:
                _defer(room_context.NOTIFICATIONS_QUEUE, {**body, "items": items[position:]},
                       throttled.retry_after or 5, "Graph throttled")
                return
            except Deferred as deferred:
                _defer(room_context.NOTIFICATIONS_QUEUE, {**body, "items": items[position:]},
                       deferred.delay_seconds, str(deferred))
                return
            room_context.subscription_service().touch(item["integration_id"], item["asset_id"], utc_now())


@bp.function_name("room_lifecycle_worker")
@bp.queue_trigger(arg_name="message", queue_name=room_context.LIFECYCLE_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(room_context.LIFECYCLE_QUEUE)
def room_lifecycle_worker(message: func.QueueMessage) -> None:
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(None, message.id)):
        body = _json_message(message, "graph-lifecycle")
        for item in body.get("items") or []:
            with logcontext.bind(correlation_id=logcontext.correlation_of_message(body, message.id),
                                 **_subscription_ids(item)):
                try:
                    outcome = room_context.subscription_service().on_lifecycle(item.get("integration_id"),
                                                                               item["subscription_id"],
                                                                               item["lifecycle_event"])
                except Throttled as throttled:
                    _defer(room_context.LIFECYCLE_QUEUE, {**body, "items": [item]}, throttled.retry_after or 5,
                           "Graph throttled")
                    continue
                log.info("lifecycle %s for subscription %s: %s", item.get("lifecycle_event"),
                         item.get("subscription_id"), outcome)


def _subscription_ids(item) -> dict[str, str | None]:
    """The integration and asset a lifecycle item concerns, from the (cached) subscription row
    when it belongs to the integration the item names (the item names no asset)."""
    subscription_id = item.get("subscription_id") if isinstance(item, dict) else None
    named = logcontext.safe_id(item.get("integration_id")) if isinstance(item, dict) else None
    link = room_context.subscription_cache().get(subscription_id) if isinstance(subscription_id, str) else None
    if link is None or (named and link.integration_id != named):  # not that integration's: name only what was sent
        return {"integration_id": named}
    return {"integration_id": logcontext.safe_id(link.integration_id), "asset_id": logcontext.safe_id(link.asset_id)}


@bp.function_name("calendar_resync_worker")
@bp.queue_trigger(arg_name="message", queue_name=room_context.RESYNC_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(room_context.RESYNC_QUEUE)
def calendar_resync_worker(message: func.QueueMessage) -> None:
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(None, message.id)):
        body = _json_message(message, "calendar-resync")
        with logcontext.bind(correlation_id=logcontext.correlation_of_message(body, message.id),
                             **logcontext.ids_of(body)):
            _resync(message, body)


def _resync(message: func.QueueMessage, body: dict) -> None:
    if not isinstance(body.get("integration_id"), str) or not isinstance(body.get("asset_id"), str):
        raise ValueError(f"calendar-resync message {message.id} names no integration and asset")
    try:
        room_context.resync().run(body["integration_id"], body["asset_id"], str(body.get("reason") or "requested"))
    except Throttled as throttled:
        _defer(room_context.RESYNC_QUEUE, body, throttled.retry_after or 5, "Graph throttled")
    except Deferred as deferred:
        _defer(room_context.RESYNC_QUEUE, body, deferred.delay_seconds, str(deferred))


@bp.function_name("subscription_maintenance")
@bp.timer_trigger(arg_name="timer", schedule="%SUBSCRIPTION_RENEWAL_SCHEDULE%", run_on_startup=False,
                  use_monitor=True)
def subscription_maintenance(timer: func.TimerRequest) -> None:
    counts = room_context.subscription_service().renew_due()
    queued = room_context.resync_schedule().queue_due()
    forgotten = room_context.deadletters().forget_failures(utc_now() - FAILURE_NOTES_KEPT)
    log.info("subscriptions: %s; %d scheduled resync(s) queued; %d old failure note(s) forgotten", counts, queued,
             forgotten)


def _json_or_none(text: str):
    """A poison message's JSON, when it is JSON (only to name its ids in the logs)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _keep_dead_letter(queue: str):
    def keep(message: func.QueueMessage) -> None:
        try:
            text = message.get_body().decode("utf-8", errors="replace")
        except Exception:  # the body itself is unreadable: keep what can be kept
            text = ""
        body = _json_or_none(text)
        with logcontext.bind(correlation_id=logcontext.correlation_of_message(body, message.id),
                             **logcontext.ids_of(body)):
            letters = room_context.deadletters()
            error = letters.take_failure(queue, text)
            # (the poison copy is a new message: its dequeue count is not the failed attempts)
            letter = letters.keep(queue, message.id, text, "moved to the poison queue after the host's retries; "
                                  f"last error: {error or 'not recorded'}", utc_now(), int(message.dequeue_count or 0))
            log.error("dead letter from %s kept as %s", queue, letter.view()["id"])
    keep.__name__ = f"deadletter_{queue.replace('-', '_')}"
    return keep


for _queue in POISONED_QUEUES:
    _name = f"deadletter_{_queue.replace('-', '_')}"
    bp.function_name(_name)(bp.queue_trigger(arg_name="message", queue_name=f"{_queue}-poison",
                                             connection="AzureWebJobsStorage")(_keep_dead_letter(_queue)))
