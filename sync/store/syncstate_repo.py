"""The `syncstate` table: where each integration's user sync stands.

PartitionKey the integration id, RowKey `users` (room calendars add their own rows later).
The row holds the users deltaLink (saved only after a complete round), the last run (id,
trigger, kind, outcome, counts, cost), the last error, the guard's refusal if one is pending,
how often in a row Entra refused tokens with a code we do not know, and a lease so two runs of
one integration never overlap (the timer and an admin's request can arrive together).

The lease belongs to one *invocation* (`LeaseToken`, new for each), not to a run id: the queue
delivers a message at least once, so two deliveries of the same request (same run id) can run
at the same time and must exclude each other like any two runs. Every write is ETag-guarded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from sync.model import iso_utc
from sync.store.catalog import Store
from sync.store.errors import ConflictError
from sync.store.tables import REPLACE, etag_of, utc_moment

TABLE = "syncstate"
USERS_ROW = "users"


@dataclass(frozen=True)
class LastRun:
    run_id: str
    trigger: str
    kind: str  # delta / full / full_after_expiry
    forced: bool
    started_at: datetime
    finished_at: datetime | None
    outcome: str  # running / applied / guard_refused / credentials_invalid / failed
    counts: dict[str, int] = field(default_factory=dict)
    graph_requests: int = 0
    table_transactions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "trigger": self.trigger, "kind": self.kind, "forced": self.forced,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "outcome": self.outcome, "counts": dict(self.counts), "graph_requests": self.graph_requests,
            "table_transactions": self.table_transactions,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LastRun":
        return cls(
            run_id=data["run_id"], trigger=data["trigger"], kind=data["kind"], forced=bool(data["forced"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]) if data.get("finished_at") else None,
            outcome=data["outcome"], counts=dict(data.get("counts") or {}),
            graph_requests=int(data.get("graph_requests", 0)),
            table_transactions=int(data.get("table_transactions", 0)),
        )


@dataclass(frozen=True)
class UserSyncState:
    integration_id: str
    delta_link: str | None = field(default=None, repr=False)
    delta_link_saved_at: datetime | None = None
    last_run: LastRun | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    guard: dict[str, Any] | None = None
    lease_run_id: str | None = None
    lease_until: datetime | None = None
    lease_token: str | None = None
    token_error_code: int | None = None  # an AADSTS code not known to the app, while it repeats
    token_error_repeats: int = 0
    etag: str | None = field(default=None, compare=False)

    def leased_to_other(self, token: str, now: datetime) -> bool:
        """Whether another invocation holds an unexpired lease (a lease without a token, written
        before tokens existed, counts as someone else's)."""
        held = bool((self.lease_run_id or self.lease_token) and self.lease_until and self.lease_until > now)
        return held and self.lease_token != token

    def is_running(self, now: datetime) -> bool:
        return bool(self.lease_until and self.lease_until > now and (self.lease_run_id or self.lease_token))

    def released(self) -> "UserSyncState":
        return replace(self, lease_run_id=None, lease_until=None, lease_token=None)


class SyncStateRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    def get(self, integration_id: str) -> UserSyncState:
        row = self.table.get(integration_id, USERS_ROW)
        return from_entity(row) if row is not None else UserSyncState(integration_id)

    def acquire(self, integration_id: str, run_id: str, token: str, now: datetime,
                lease: timedelta) -> UserSyncState | None:
        """Takes the run lease for the invocation holding `token`; None while another
        invocation (even of the same run id) holds an unexpired one."""
        for _ in range(3):
            state = self.get(integration_id)
            if state.leased_to_other(token, now):
                return None
            leased = replace(state, lease_run_id=run_id, lease_until=now + lease, lease_token=token)
            try:
                return self.save(leased)
            except ConflictError:
                continue  # someone wrote in between: look again
        return None

    def save(self, state: UserSyncState) -> UserSyncState:
        """Writes the row if it is unchanged since read (or still absent); ConflictError otherwise."""
        entity = to_entity(state)
        if state.etag is None:
            etag = self.table.insert(entity)
        else:
            etag = self.table.update(entity, state.etag, mode=REPLACE)
        return replace(state, etag=etag)

    def delete(self, integration_id: str) -> None:
        self.table.delete(integration_id, USERS_ROW)


def to_entity(state: UserSyncState) -> dict[str, Any]:
    entity = {
        "PartitionKey": state.integration_id,
        "RowKey": USERS_ROW,
        "DeltaLink": state.delta_link,
        "DeltaLinkSavedAt": state.delta_link_saved_at,
        "LastRun": json.dumps(state.last_run.as_dict()) if state.last_run else None,
        "LastSuccessAt": state.last_success_at,
        "LastError": state.last_error,
        "LastErrorAt": state.last_error_at,
        "Guard": json.dumps(state.guard) if state.guard else None,
        "LeaseRunId": state.lease_run_id,
        "LeaseUntil": state.lease_until,
        "LeaseToken": state.lease_token,
        "TokenErrorCode": state.token_error_code,
        "TokenErrorRepeats": state.token_error_repeats or None,
    }
    return {name: value for name, value in entity.items() if value is not None}


def from_entity(row: Mapping[str, Any]) -> UserSyncState:
    return UserSyncState(
        integration_id=row["PartitionKey"],
        delta_link=row.get("DeltaLink"),
        delta_link_saved_at=utc_moment(row.get("DeltaLinkSavedAt")),
        last_run=LastRun.from_dict(json.loads(row["LastRun"])) if row.get("LastRun") else None,
        last_success_at=utc_moment(row.get("LastSuccessAt")),
        last_error=row.get("LastError"),
        last_error_at=utc_moment(row.get("LastErrorAt")),
        guard=json.loads(row["Guard"]) if row.get("Guard") else None,
        lease_run_id=row.get("LeaseRunId"),
        lease_until=utc_moment(row.get("LeaseUntil")),
        lease_token=row.get("LeaseToken"),
        token_error_code=row.get("TokenErrorCode"),
        token_error_repeats=int(row.get("TokenErrorRepeats") or 0),
        etag=etag_of(row),
    )
