"""Putting messages on Storage queues: user events for the bookings side, and sync requests.

Messages are small JSON objects of ids (never payloads to trust), base64 encoded like every
message the Functions host reads (the queue client's encode policy does that). A queue is
created on first use, so a fresh storage account needs no set-up step.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Mapping

from azure.core.exceptions import ResourceExistsError

from sync.model import iso_utc
from sync.store.connection import queue_client
from sync.store.users_repo import PendingEvent

log = logging.getLogger(__name__)

USER_EVENTS_QUEUE = "user-events"
# Storage refuses messages over 64 KiB once encoded; base64 grows text by a third.
MAX_MESSAGE_TEXT = 48 * 1024


class QueuePublisher:
    """Sends JSON messages to one queue of a QueueServiceClient (base64 encode policy)."""

    def __init__(self, queue_service: Any, queue_name: str) -> None:
        self.queue_name = queue_name
        self._client = queue_client(queue_service, queue_name)
        self._created = False
        self._lock = threading.Lock()

    def send(self, message: Mapping[str, Any], *, delay_seconds: int = 0) -> None:
        """`delay_seconds` keeps the message invisible that long (a retry after throttling)."""
        text = json.dumps(dict(message), separators=(",", ":"), sort_keys=True)
        if len(text.encode("utf-8")) > MAX_MESSAGE_TEXT:
            raise ValueError(f"a message for {self.queue_name} is too large ({len(text)} characters)")
        self._ensure_queue()
        self._client.send_message(text, visibility_timeout=delay_seconds or None)

    def _ensure_queue(self) -> None:
        if self._created:
            return
        with self._lock:
            if not self._created:
                try:
                    self._client.create_queue()
                except ResourceExistsError:
                    pass
                self._created = True


class UserEventPublisher:
    """`user.deactivated` / `user.reactivated` for the bookings side (which releases a leaver's
    future reservations). Delivery is at least once: every event carries a stable `event_id`
    (its outbox row's id, the same on every resend), so consumers drop the repeats."""

    def __init__(self, publisher: QueuePublisher) -> None:
        self._publisher = publisher

    def publish(self, event: PendingEvent) -> None:
        self._publisher.send(event_message(event))


def event_message(event: PendingEvent) -> dict[str, str]:
    return {"event_id": event.event_id, "type": event.type, "integration_id": event.integration_id,
            "user_id": event.user_id, "at": iso_utc(event.at)}
