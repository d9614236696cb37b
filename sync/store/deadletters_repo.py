"""The `deadletters` table: every message a queue gave up on, kept until an admin retries or
discards it. Partition = the integration id the message names (or `queue!<name>` when it names
none, or is unreadable); RowKey = the message id the queue gave it, so the copy made by a
poison worker that runs twice for one message is written once.

The host moves a message to its poison queue without the error that made it fail, so each failed
attempt's error is noted first, in partitions `failure!<queue>` keyed by a hash of the message
text, and taken back when the message is kept as a dead letter. Failure notes are never dead
letters: listing, reading and counting skip them; notes of messages that later succeeded are
forgotten after a day."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Mapping

from sync.model import iso_utc
from sync.store.catalog import Store
from sync.store.keys import compose, encode_id, prefix_range
from sync.store.tables import REPLACE, utc_moment

TABLE = "deadletters"
MAX_TEXT = 32 * 1024
FAILURE = "failure"
MAX_ERROR = 2000


@dataclass(frozen=True)
class DeadLetter:
    partition: str
    id: str
    queue: str
    message: str
    error: str
    at: datetime
    dequeue_count: int

    @property
    def integration_id(self) -> str | None:
        return None if self.partition.startswith("queue!") else self.partition

    def view(self) -> dict[str, Any]:
        return {"id": f"{self.partition}~{self.id}", "queue": self.queue, "integration_id": self.integration_id,
                "message": self.message, "error": self.error, "at": iso_utc(self.at),
                "dequeue_count": self.dequeue_count}


def integration_of(text: str) -> str | None:
    """The integration a message names, if it is readable JSON that names one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    candidates = [body.get("integration_id")] if isinstance(body, dict) else []
    if isinstance(body, dict) and isinstance(body.get("items"), list) and body["items"]:
        first = body["items"][0]
        candidates.append(first.get("integration_id") if isinstance(first, dict) else None)
    for value in candidates:
        if isinstance(value, str) and len(value) == 36 and all(c in "0123456789abcdef-" for c in value.lower()):
            return value.lower()
    return None


class DeadLettersRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    def keep(self, queue: str, message_id: str, text: str, error: str, at: datetime, dequeue_count: int) -> DeadLetter:
        partition = integration_of(text) or compose("queue", encode_id(queue))
        letter = DeadLetter(partition=partition, id=encode_id(message_id), queue=queue, message=text[:MAX_TEXT],
                            error=error[:MAX_ERROR], at=at, dequeue_count=dequeue_count)
        self.table.upsert({"PartitionKey": letter.partition, "RowKey": letter.id, "Queue": queue,
                           "Message": letter.message, "Error": letter.error, "At": at,
                           "DequeueCount": dequeue_count}, mode=REPLACE)
        return letter

    def list(self, integration_id: str | None = None) -> Iterator[DeadLetter]:
        rows = self.table.query(partition=integration_id) if integration_id else self.table.query()
        for row in rows:
            if not _is_failure_note(row["PartitionKey"]):
                yield _letter(row)

    def get(self, view_id: str) -> DeadLetter | None:
        partition, _, row_key = view_id.partition("~")
        if not partition or not row_key or _is_failure_note(partition):
            return None
        try:
            row = self.table.get(partition, row_key)
        except Exception:
            return None
        return _letter(row) if row is not None else None

    def discard(self, letter: DeadLetter) -> None:
        self.table.delete(letter.partition, letter.id)

    def purge(self, integration_id: str) -> int:
        rows = list(self.table.query(partition=integration_id, select=["PartitionKey", "RowKey"]))
        if rows:
            self.table.transact([("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]}) for r in rows])
        return len(rows)

    def count(self, integration_id: str | None = None) -> int:
        return sum(1 for _ in self.list(integration_id))

    # ---- the error of a failed attempt, until the message is kept or succeeds ----------------

    def note_failure(self, queue: str, text: str, error: str, at: datetime) -> None:
        self.table.upsert({"PartitionKey": compose(FAILURE, encode_id(queue)), "RowKey": _text_key(text),
                           "Error": error[:MAX_ERROR], "At": at}, mode=REPLACE)

    def take_failure(self, queue: str, text: str) -> str | None:
        """The last error noted for this message text on this queue (and forgets it)."""
        partition, row_key = compose(FAILURE, encode_id(queue)), _text_key(text)
        row = self.table.get(partition, row_key)
        if row is None:
            return None
        self.table.delete(partition, row_key)
        return row.get("Error") or None

    def forget_failures(self, before: datetime) -> int:
        low, high = prefix_range(FAILURE)
        rows = list(self.table.query("PartitionKey ge @low and PartitionKey lt @high and At lt @before",
                                     {"low": low, "high": high, "before": before},
                                     select=["PartitionKey", "RowKey"]))
        for row in rows:
            self.table.delete(row["PartitionKey"], row["RowKey"])
        return len(rows)


def _is_failure_note(partition: str) -> bool:
    return partition.startswith(FAILURE + "!")


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


def _letter(row: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(partition=row["PartitionKey"], id=row["RowKey"], queue=row["Queue"], message=row["Message"],
                      error=row.get("Error") or "", at=utc_moment(row["At"]),
                      dequeue_count=int(row.get("DequeueCount") or 0))
