"""Resync of one room calendar: the safety net for notifications Graph lost.

A calendarView delta round over [now - 1 day, now + horizon] from the stored deltaLink returns
every item that changed since the last round; each goes through the same path as a notified
change (sync/inbound.py), so a resync after a lost notification ends where the notification
would have. The link is saved only after the whole round was applied, so a crash repeats the
round instead of skipping changes. A link older than a week (its window no longer reaches the
horizon), or one Graph refuses (410), starts a fresh round.

Series come as their occurrences; each series is applied once through its master.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from graph import DeltaExpired
from graph.events import calendar_view_delta_round
from sync.inbound import InboundSync
from sync.model import utc_now
from sync.room_events import valid_graph_id
from sync.store.catalog import Store
from sync.store.keys import compose
from sync.store.tables import REPLACE, utc_moment

log = logging.getLogger(__name__)

TABLE = "syncstate"
LINK_MAX_AGE = timedelta(days=7)


@dataclass
class ResyncReport:
    integration_id: str
    asset_id: str
    kind: str = "skipped"  # delta / fresh / skipped
    changes: int = 0
    applied: int = 0
    graph_calls: int = 0
    errors: list[str] = field(default_factory=list)


class CalendarStateRepo:
    """Row `calendar!<asset id>` of the integration's syncstate partition: the deltaLink and when
    its window began."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    def get(self, integration_id: str, asset_id: str) -> tuple[str | None, datetime | None]:
        row = self.table.get(integration_id, compose("calendar", asset_id))
        if row is None:
            return None, None
        return row.get("DeltaLink"), utc_moment(row.get("WindowStart"))

    def save(self, integration_id: str, asset_id: str, link: str, window_start: datetime, counts: dict) -> None:
        self.table.upsert({"PartitionKey": integration_id, "RowKey": compose("calendar", asset_id),
                           "DeltaLink": link, "WindowStart": window_start, "LastRunAt": utc_now(),
                           "LastChanges": counts.get("changes", 0)}, mode=REPLACE)

    def last_run(self, integration_id: str, asset_id: str) -> datetime | None:
        row = self.table.get(integration_id, compose("calendar", asset_id))
        return utc_moment(row.get("LastRunAt")) if row is not None else None

    def delete(self, integration_id: str, asset_id: str) -> None:
        self.table.delete(integration_id, compose("calendar", asset_id))


class ResyncSchedule:
    """Queues a resync of every subscribed room not resynced for `every` (the scheduled safety net)."""

    def __init__(self, *, subscriptions, state: CalendarStateRepo, request: Callable[[str, str, str], None],
                 every: timedelta = timedelta(hours=6), clock: Callable[[], datetime] = utc_now) -> None:
        self.subscriptions = subscriptions
        self.state = state
        self.request = request
        self.every = every
        self.clock = clock

    def queue_due(self) -> int:
        now = self.clock()
        queued = 0
        for link in self.subscriptions.all():
            last = self.state.last_run(link.integration_id, link.asset_id)
            if last is None or now - last >= self.every:
                self.request(link.integration_id, link.asset_id, "scheduled")
                queued += 1
        return queued


class CalendarResync:
    def __init__(self, *, inbound: InboundSync, state: CalendarStateRepo, horizon_days: int = 90,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.inbound = inbound
        self.state = state
        self.horizon = timedelta(days=horizon_days)
        self.clock = clock

    def run(self, integration_id: str, asset_id: str, reason: str) -> ResyncReport:
        report = ResyncReport(integration_id, asset_id)
        target = self.inbound._target(integration_id, asset_id)
        if target is None:
            return report
        integration, asset = target
        link, window_start = self.state.get(integration_id, asset_id)
        now = self.clock()
        if link and window_start and now - window_start > LINK_MAX_AGE:
            link = None
        client = self.inbound.access.client_for(integration)
        try:
            try:
                round_ = calendar_view_delta_round(client, asset.mailbox, delta_link=link) if link else None
                report.kind = "delta"
            except DeltaExpired:
                round_ = None
            if round_ is None:
                window_start = now - timedelta(days=1)
                round_ = calendar_view_delta_round(client, asset.mailbox, start=window_start, end=now + self.horizon)
                report.kind = "fresh"
            report.changes = len(round_.changes)
            report.graph_calls += round_.pages
            for event_id, as_read in _distinct_items(round_.changes):
                item = self.inbound.apply_item(client, integration, asset, event_id, trigger=f"resync:{reason}",
                                               as_read=as_read)
                report.applied += len(item.decisions)
                report.graph_calls += item.graph_calls
            self.state.save(integration_id, asset_id, round_.delta_link, window_start or now, {"changes": report.changes})
        finally:
            client.close()
        log.info("resync of asset %s (%s, %s): %d change(s)", asset_id, reason, report.kind, report.changes)
        return report


def _distinct_items(changes: list[dict]) -> list[tuple[str, dict | None]]:
    """One entry per item to apply: series by their master (re-read, expanded once), removed
    items re-read (404 tells deleted from "left the window"), the rest as delta gave them."""
    out: dict[str, dict | None] = {}
    for change in changes:
        if not isinstance(change, dict) or not valid_graph_id(change.get("id")):
            continue
        master = change.get("seriesMasterId")
        if valid_graph_id(master):
            out.setdefault(master, None)
        elif "@removed" in change or not change.get("start"):
            out.setdefault(change["id"], None)
        else:
            out[change["id"]] = change
    return list(out.items())
