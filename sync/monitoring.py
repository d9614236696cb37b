"""The status document behind `GET /api/status`: what a monitor polls to know whether the sync is
healthy, in one request.

Per integration: its state, its people, its last user-sync success and last error; per asset:
the subscription's state, expiry, last notification and last error; per queue: the approximate
backlog (the service's own count, cheap and good enough for alerting), poison queues included;
and the dead letters waiting for an admin. `problems` lists what needs a person, so an alert rule
can fire on `status != "ok"` without knowing every field.

Assets, dead letters and queues are read without being created: one that does not exist yet (no
asset was ever added, no message ever poisoned) reads as empty, so a fresh deployment reports "ok".
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from azure.core.exceptions import ResourceNotFoundError

from sync.booking_model import EXPIRED, SUBSCRIPTION_ERROR
from sync.credentials import secret_expiry_warnings
from sync.events_out import USER_EVENTS_QUEUE
from sync.health import describe_failure
from sync.model import ACTIVE, iso_utc, utc_now
from sync.reservation_events import RESERVATION_EVENTS_QUEUE
from sync.store.assets_repo import ASSETS, from_entity as asset_from_row
from sync.store.errors import NotFoundError
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.keys import prefix_range
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.tables import Table, utc_moment
from sync.store.users_repo import UsersRepo
from sync.users import USER_SYNC_QUEUE

log = logging.getLogger(__name__)

# Where a room's calendar resync records its last run (sync/resync.py's CalendarStateRepo).
SYNCSTATE, CALENDAR_STATE = "syncstate", "calendar"

DEADLETTERS = "deadletters"
POISON_SUFFIX = "-poison"

# Queues this app's own triggers consume: the host moves their failures to `<name>-poison`.
CONSUMED_QUEUES = (USER_SYNC_QUEUE, "graph-notifications", "graph-lifecycle", "booking-changes", "calendar-resync",
                   "integration-purge", "leaver-releases")
# Queues the app only publishes to; the booking platform consumes them (a backlog means it lags).
PUBLISHED_QUEUES = (USER_EVENTS_QUEUE, RESERVATION_EVENTS_QUEUE)


@dataclass(frozen=True)
class QueueBacklog:
    name: str
    role: str  # "work" (our triggers), "poison" (their failures), "published" (for the platform)
    exists: bool
    approximate_messages: int
    error: str | None = None

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "role": self.role, "exists": self.exists,
                                "approximate_messages": self.approximate_messages}
        if self.error:
            body["error"] = self.error
        return body


def monitored_queues(consumed: Iterable[str] = CONSUMED_QUEUES,
                     published: Iterable[str] = PUBLISHED_QUEUES) -> list[tuple[str, str]]:
    """(name, role) of every queue the status reports: each consumed queue with its poison queue,
    and the poison queue's own poison queue, where the host puts a message the dead-letter keeper
    could not take either (one that is not base64, which fails before any code of ours runs)."""
    queues = []
    for name in consumed:
        queues += [(name, "work"), (name + POISON_SUFFIX, "poison"), (name + POISON_SUFFIX * 2, "poison")]
    return queues + [(name, "published") for name in published]


class StatusReader:
    def __init__(self, *, integrations: IntegrationsRepo, syncstate: SyncStateRepo, users: UsersRepo,
                 table_service: Any, queue_service: Any, clock: Callable[[], datetime] = utc_now,
                 queues: list[tuple[str, str]] | None = None) -> None:
        self.integrations = integrations
        self.syncstate = syncstate
        self.users = users
        self.table_service = table_service
        self.queue_service = queue_service
        self.clock = clock
        self.queues = queues if queues is not None else monitored_queues()

    def report(self) -> dict[str, Any]:
        now = self.clock()
        dead_letters = self._dead_letter_counts()
        integrations = [self._integration(i, now, dead_letters)
                        for i in sorted(self.integrations.list(), key=lambda i: i.created_at)]
        backlog = [self._backlog(name, role) for name, role in self.queues]
        problems = find_problems(integrations, backlog, sum(dead_letters.values()))
        return {
            "status": "ok" if not problems else "attention",
            "checked_at": iso_utc(now),
            "problems": problems,
            "integrations": integrations,
            "queues": [queue.view() for queue in backlog],
            "dead_letters": {"total": sum(dead_letters.values()), "by_partition": dict(sorted(dead_letters.items()))},
        }

    def _integration(self, integration, now: datetime, dead_letters: Counter) -> dict[str, Any]:
        state = self.syncstate.get(integration.id)
        summary = self.users.summary(integration.id)
        last_run = state.last_run
        return {
            "id": integration.id,
            "domains": list(integration.domains),
            "state": integration.status,
            "state_reason": integration.status_reason,
            "users": {"active": summary.active, "total": summary.total},
            "user_sync": {
                "last_success_at": iso_utc(state.last_success_at),
                "last_outcome": last_run.outcome if last_run else None,
                "last_run_finished_at": iso_utc(last_run.finished_at) if last_run else None,
                "last_error": state.last_error,
                "last_error_at": iso_utc(state.last_error_at),
                "failing": bool(state.last_error_at and (not state.last_success_at
                                                         or state.last_error_at > state.last_success_at)),
                "guard_pending": bool(state.guard),
            },
            "warnings": secret_expiry_warnings(integration.secret_expires_at, now),
            "assets": self._asset_statuses(integration.id, now),
            "dead_letters": dead_letters.get(integration.id, 0),
        }

    def _assets(self, integration_id: str) -> list:
        low, high = prefix_range("a")
        rows = Table(self.table_service, ASSETS).query(
            "RowKey ge @low and RowKey lt @high", {"low": low, "high": high}, partition=integration_id)
        try:
            return sorted((asset_from_row(row) for row in rows), key=lambda asset: asset.name.lower())
        except NotFoundError:
            return []  # no asset was ever added: the table does not exist yet

    def _asset_statuses(self, integration_id: str, now: datetime) -> list[dict[str, Any]]:
        resyncs = self._resync_times(integration_id)
        return [asset_status(asset, now, resyncs.get(asset.id)) for asset in self._assets(integration_id)]

    def _resync_times(self, integration_id: str) -> dict[str, datetime]:
        """When each asset's calendar resync last completed (its row in the syncstate partition)."""
        low, high = prefix_range(CALENDAR_STATE)
        try:
            rows = list(Table(self.table_service, SYNCSTATE).query(
                "RowKey ge @low and RowKey lt @high", {"low": low, "high": high}, partition=integration_id,
                select=["RowKey", "LastRunAt"]))
        except NotFoundError:
            return {}
        return {row["RowKey"][len(low):]: moment for row in rows if (moment := utc_moment(row.get("LastRunAt")))}

    def _dead_letter_counts(self) -> Counter:
        try:
            rows = list(Table(self.table_service, DEADLETTERS).query(select=["PartitionKey"]))
        except NotFoundError:
            return Counter()
        return Counter(row["PartitionKey"] for row in rows)

    def _backlog(self, name: str, role: str) -> QueueBacklog:
        try:
            properties = self.queue_service.get_queue_client(name).get_queue_properties()
        except ResourceNotFoundError:
            return QueueBacklog(name, role, exists=False, approximate_messages=0)
        except Exception as error:  # noqa: BLE001 -- one unreadable queue must not hide the others
            log.warning("status: queue %s could not be read: %s", name, describe_failure(error))
            return QueueBacklog(name, role, exists=False, approximate_messages=0, error=describe_failure(error))
        return QueueBacklog(name, role, exists=True, approximate_messages=int(properties.approximate_message_count or 0))


def asset_status(asset, now: datetime, last_resync_at: datetime | None = None) -> dict[str, Any]:
    """`last_success_at`: the later of the last notification applied and the last calendar resync."""
    subscription = asset.subscription.view(now)
    successes = [moment for moment in (asset.subscription.last_notification_at, last_resync_at) if moment]
    return {"id": asset.id, "name": asset.name, "mailbox": asset.mailbox, "state": subscription["state"],
            "expires_at": subscription["expires_at"], "last_notification_at": subscription["last_notification_at"],
            "last_resync_at": iso_utc(last_resync_at), "last_success_at": iso_utc(max(successes, default=None)),
            "last_error": subscription["last_error"], "last_error_at": subscription["last_error_at"]}


def find_problems(integrations: list[dict[str, Any]], queues: list[QueueBacklog], dead_letters: int) -> list[dict[str, Any]]:
    """What needs a person, each with a code an alert can match and the ids it concerns."""
    problems: list[dict[str, Any]] = []
    for integration in integrations:
        where = {"integration_id": integration["id"]}
        if integration["state"] != ACTIVE:
            problems.append({"code": f"integration_{integration['state']}", **where,
                             "message": integration["state_reason"] or f"the integration is {integration['state']}"})
        sync = integration["user_sync"]
        if sync["failing"]:
            problems.append({"code": "user_sync_failing", **where, "message": sync["last_error"] or "the last user sync failed"})
        if sync["guard_pending"]:
            problems.append({"code": "user_sync_guard", **where,
                             "message": "a user sync waits for confirmation (too many deactivations)"})
        for warning in integration["warnings"]:
            problems.append({"code": warning["code"], **where, "message": warning["message"]})
        for asset in integration["assets"]:
            if asset["state"] in (SUBSCRIPTION_ERROR, EXPIRED):
                problems.append({"code": f"subscription_{asset['state']}", **where, "asset_id": asset["id"],
                                 "message": asset["last_error"] or f"the subscription of {asset['mailbox']} is {asset['state']}"})
    for queue in queues:
        if queue.error:
            problems.append({"code": "queue_unreadable", "queue": queue.name, "message": queue.error})
        elif queue.role == "poison" and queue.approximate_messages:
            problems.append({"code": "poison_messages", "queue": queue.name,
                             "message": f"{queue.approximate_messages} message(s) failed every retry"})
    if dead_letters:
        problems.append({"code": "dead_letters", "message": f"{dead_letters} dead letter(s) wait to be retried or discarded"})
    return problems
