"""Removing a deleted integration and everything kept under it, resumably.

`DELETE /integrations/{id}` only marks the integration `deleting` (from then on the API shows
nothing of it) and asks for a purge on the `integration-purge` queue. The purge worker runs
the registered steps in order; each step removes one kind of data in bounded slices and is
idempotent, so a purge that crashes or runs out of time is simply run again from the message
(finished steps are recorded on the integration row and skipped). Only when every step is done
does the integration row go, together with its tenant and domain guard rows, in one
transaction: until then its credentials stay available to steps that must call Graph (say,
to delete subscriptions).

Steps are listed in the composition root (functions/context.py, `purge_steps`); later parts of
the app add theirs (assets, Graph subscriptions, reservations...) by implementing `PurgeStep`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Protocol, Sequence

from sync.events_out import QueuePublisher
from sync.model import Integration, utc_now
from sync.store.email_guard_repo import EmailGuard
from sync.store.errors import ConflictError
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo

log = logging.getLogger(__name__)

PURGE_QUEUE = "integration-purge"
# Work one invocation does before handing over to a fresh message (the host's timeout is 10 min).
INVOCATION_BUDGET = timedelta(minutes=4)
ROWS_PER_SLICE = 1000
# A user sync that started before the deletion may hold its lease this long (sync.users.RUN_LEASE).
PURGE_LEASE = timedelta(days=1)


@dataclass(frozen=True)
class StepProgress:
    """What one call of a step achieved: `done` once nothing of its kind is left; otherwise
    call again, after `retry_after` seconds when it is waiting for something."""

    done: bool
    removed: int = 0
    retry_after: float = 0.0


class PurgeStep(Protocol):
    """One kind of data under an integration. `purge` removes a bounded slice and must be
    idempotent: it may be called again after a crash, even after it reported done."""

    name: str

    def purge(self, integration: Integration) -> StepProgress: ...


# ---- the steps the user sync needs ---------------------------------------------------------------

class UserSyncLeaseStep:
    """Waits for a user sync that started before the deletion, then holds the run lease for the
    rest of the purge so no run writes people behind the purge's back."""

    name = "user-sync-lease"

    def __init__(self, syncstate: SyncStateRepo, clock: Callable[[], datetime] = utc_now) -> None:
        self.syncstate = syncstate
        self.clock = clock

    def purge(self, integration: Integration) -> StepProgress:
        now = self.clock()
        if self.syncstate.acquire(integration.id, "purge", purge_token(integration.id), now, PURGE_LEASE):
            return StepProgress(done=True)
        state = self.syncstate.get(integration.id)
        wait = (state.lease_until - now).total_seconds() if state.lease_until else 60.0
        return StepProgress(done=False, retry_after=max(5.0, min(wait, 900.0)))


class EmailGuardStep:
    """Gives up the addresses the integration's people held across integrations."""

    name = "email-guard"

    def __init__(self, guard: EmailGuard, rows_per_slice: int = ROWS_PER_SLICE) -> None:
        self.guard = guard
        self.rows_per_slice = rows_per_slice

    def purge(self, integration: Integration) -> StepProgress:
        found = self.guard.purge_some(integration.id, self.rows_per_slice)
        return StepProgress(done=found < self.rows_per_slice, removed=found)


class PeopleStep:
    """The people, their email index, counters and outbox (the integration's users partition)."""

    name = "people"

    def __init__(self, users: UsersRepo, rows_per_slice: int = ROWS_PER_SLICE) -> None:
        self.users = users
        self.rows_per_slice = rows_per_slice

    def purge(self, integration: Integration) -> StepProgress:
        found = self.users.purge_some(integration.id, self.rows_per_slice)
        return StepProgress(done=found == 0, removed=found)


class SyncStateStep:
    """The sync state row (last because it carries the purge's lease)."""

    name = "sync-state"

    def __init__(self, syncstate: SyncStateRepo) -> None:
        self.syncstate = syncstate

    def purge(self, integration: Integration) -> StepProgress:
        self.syncstate.delete(integration.id)
        return StepProgress(done=True, removed=1)


def purge_token(integration_id: str) -> str:
    """The purge's lease token: the same for every invocation of one purge, so it resumes."""
    return f"purge:{integration_id}"


# ---- requests and runs -------------------------------------------------------------------------

class PurgeRequester:
    """Asks for (more of) a purge by putting `{"integration_id"}` on the integration-purge queue."""

    def __init__(self, publisher: QueuePublisher) -> None:
        self._publisher = publisher

    def request(self, integration_id: str, *, delay_seconds: float = 0) -> None:
        self._publisher.send({"integration_id": integration_id}, delay_seconds=int(round(delay_seconds)))


def purge_request_from_message(data: object) -> str:
    """The integration id of a purge message; ValueError naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("integration_id"), str) or not data["integration_id"]:
        raise ValueError("an integration-purge message must be a JSON object with integration_id")
    return data["integration_id"]


@dataclass
class PurgeReport:
    integration_id: str
    outcome: str  # removed / in_progress / not_deleting / already_gone
    steps_done: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)


class IntegrationPurge:
    """Runs the steps of one integration's purge for up to one invocation's budget."""

    def __init__(self, *, integrations: IntegrationsRepo, steps: Sequence[PurgeStep], requester: PurgeRequester,
                 clock: Callable[[], datetime] = utc_now, budget: timedelta = INVOCATION_BUDGET) -> None:
        names = [step.name for step in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"purge step names must be unique: {names}")
        self.integrations = integrations
        self.steps = list(steps)
        self.requester = requester
        self.clock = clock
        self.budget = budget

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def run(self, integration_id: str) -> PurgeReport:
        report = PurgeReport(integration_id, "in_progress")
        integration = self.integrations.get(integration_id)
        if integration is None:
            report.outcome = "already_gone"
            return report
        if not integration.is_deleting:
            report.outcome = "not_deleting"
            log.warning("purge of integration %s ignored: it is %s, not deleting", integration_id, integration.status)
            return report
        deadline = self.clock() + self.budget
        for step in self.steps:
            if step.name in integration.purged_steps:
                continue
            while True:
                progress = step.purge(integration)
                report.removed[step.name] = report.removed.get(step.name, 0) + progress.removed
                if progress.done:
                    break
                if progress.retry_after or self.clock() >= deadline:
                    self.requester.request(integration.id, delay_seconds=progress.retry_after)
                    log.info("purge of integration %s paused in step %s (%s); continues from the queue",
                             integration.id, step.name, f"waiting {progress.retry_after:.0f} s"
                             if progress.retry_after else "time budget used")
                    return report
            integration = self._record_step(integration, step.name)
            report.steps_done.append(step.name)
        self.integrations.remove(integration)
        report.outcome = "removed"
        log.info("integration %s removed after its purge (%s)", integration.id,
                 ", ".join(f"{name}: {count}" for name, count in report.removed.items()) or "nothing left to remove")
        return report

    def _record_step(self, integration: Integration, name: str) -> Integration:
        for _ in range(3):
            try:
                return self.integrations.update(replace(integration, purged_steps=(*integration.purged_steps, name)))
            except ConflictError:
                fresh = self.integrations.get(integration.id)
                if fresh is None:
                    raise
                integration = fresh
                if name in integration.purged_steps:
                    return integration
        raise ConflictError(ConflictError.MODIFIED, table="integrations", row_key=integration.id)
