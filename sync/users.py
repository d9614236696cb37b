"""Keeping an integration's people in step with Entra ID (DESIGN.md, flow "Users").

A run reads one `/users/delta` round (from the saved deltaLink, or a full read the first time
and whenever Graph says the link expired), plans the changes with sync.user_delta, checks the
mass-deactivation guard, writes people in batched transactions, publishes user events through
the outbox, and only then saves the new deltaLink. A failed or refused run leaves the old link
in place, so the next run reads the same changes again; applying them is idempotent.

Runs are requested through the `user-sync` queue (after onboarding, by an admin, by the nightly
timer) and executed by its worker, one integration per message, so one tenant's trouble never
delays another's. An integration whose credentials stopped working is parked
(`credentials_invalid`) and skipped with one log line until its secret is replaced.

Only people of the integration's proven domains are activated (sync.domain_proof); a change of
the proven domains makes the run a full read, so people of a newly proven domain arrive and
people of a domain no longer proven leave. A person's address is claimed in the global email
guard before it is written, and an address another integration holds is refused, never shared.

Failures Graph or Entra will heal (throttling, 5xx, token service unavailable) put the request
back on the queue with a delay instead of spending the message's dequeue count; a token refusal
with an AADSTS code the app does not know is shown in the status and, after
`UNKNOWN_TOKEN_ERROR_PARK_AFTER` runs in a row, parks the integration.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from graph import DeltaExpired, GraphError, Throttled, TokenError, TokenServiceUnavailable
from graph.users import delta_reader
from sync.credentials import (
    PERMANENT_TOKEN_ERRORS, GraphAccess, credentials_reason, is_credentials_problem, park_integration,
    secret_expiry_warnings,
)
from sync.domain_proof import prove_domains, read_verified_domains
from sync.events_out import QueuePublisher, UserEventPublisher
from sync.secret_box import SecretUnreadable
from sync.live_integrations import live_integration_ids, require_live_integration
from sync import validation
from sync.model import Integration, User, iso_utc, utc_now
from sync.store.email_guard_repo import EmailGuard
from sync.store.errors import ConflictError, StoreError
from sync.store.integrations_repo import DOMAIN_GUARD, IntegrationsRepo
from sync.store.syncstate_repo import LastRun, SyncStateRepo, UserSyncState
from sync.store.users_repo import BadContinuation, Summary, UsersRepo
from sync.user_delta import (
    SELECT_FIELDS, Counts, DirectoryEntry, MalformedEntry, check_guard, index_changes, merge_entries,
    parse_entry, plan_users, refuse_emails, upn_domains,
)

log = logging.getLogger(__name__)

USER_SYNC_QUEUE = "user-sync"
RUN_LEASE = timedelta(minutes=15)  # longer than the host's 10-minute function timeout
DELTA_PAGE_SIZE = 999
# Transactions in flight at once when a full read writes many people (a first sync).
FULL_READ_WRITERS = 4

# Request triggers
INITIAL = "initial"
MANUAL = "manual"
SCHEDULE = "schedule"
RESUMED = "resumed"
CLEANUP = "cleanup"  # the integration was deleted: remove what is left of its people
TRIGGERS = (INITIAL, MANUAL, SCHEDULE, RESUMED, CLEANUP)

# Round kinds
DELTA = "delta"
FULL = "full"
FULL_AFTER_EXPIRY = "full_after_expiry"
FULL_AFTER_DOMAIN_CHANGE = "full_after_domain_change"

# Run outcomes
APPLIED = "applied"
GUARD_REFUSED = "guard_refused"
CREDENTIALS_INVALID = "credentials_invalid"
FAILED = "failed"
SKIPPED_INACTIVE = "skipped_inactive"
SKIPPED_BUSY = "skipped_busy"
DEFERRED = "deferred"
DUPLICATE = "duplicate"  # another delivery of the same request already applied it

# A request that Graph throttles, or a forced one that finds another run holding the lease, goes
# back on the queue with a delay instead of failing: failing would spend the message's dequeue
# count (five tries, then poison) on waits Graph asked for. Bounded so nothing loops forever.
MAX_DEFERRALS = 20
MAX_DEFER_SECONDS = 15 * 60
BUSY_DEFER_SECONDS = 60
# First wait after a failure Graph or Entra will heal without a Retry-After; doubles per deferral.
# MSAL replays a failed token answer for 60 s by itself, so waiting less would only meet the replay.
TRANSIENT_DEFER_SECONDS = 60
UNKNOWN_INTEGRATION = "unknown_integration"
# Runs in a row refused by Entra with the same AADSTS code we do not know before the integration
# is parked: once may be a passing glitch, three in a row (over several minutes) is a setting.
UNKNOWN_TOKEN_ERROR_PARK_AFTER = 3
# Outbox rows are sent and cleared this many at a time (one table transaction per chunk), so a
# run that stops half way leaves only the unsent rest for the next run.
OUTBOX_CHUNK = 100


# ---- requests on the queue ------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncRequest:
    integration_id: str
    run_id: str
    trigger: str
    force: bool = False
    deferrals: int = 0

    def as_message(self) -> dict[str, Any]:
        message = {"integration_id": self.integration_id, "run_id": self.run_id, "trigger": self.trigger,
                   "force": self.force}
        if self.deferrals:
            message["deferrals"] = self.deferrals
        return message

    @classmethod
    def from_message(cls, data: Any) -> "SyncRequest":
        """Raises ValueError naming what is wrong with a message body (already JSON-decoded)."""
        if not isinstance(data, dict):
            raise ValueError("a user-sync message must be a JSON object")
        integration_id, run_id = data.get("integration_id"), data.get("run_id")
        trigger, force = data.get("trigger", SCHEDULE), data.get("force", False)
        if not isinstance(integration_id, str) or not integration_id:
            raise ValueError("a user-sync message needs integration_id")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("a user-sync message needs run_id")
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger in a user-sync message; expected one of {', '.join(TRIGGERS)}")
        if not isinstance(force, bool):
            raise ValueError("force in a user-sync message must be true or false")
        deferrals = data.get("deferrals", 0)
        if not isinstance(deferrals, int) or isinstance(deferrals, bool) or deferrals < 0:
            raise ValueError("deferrals in a user-sync message must be a whole number from 0")
        return cls(integration_id, run_id, trigger, force, deferrals)


class SyncRequester:
    """Asks for a user sync of an integration by putting a message on the `user-sync` queue."""

    def __init__(self, publisher: QueuePublisher, *, new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._publisher = publisher
        self._new_id = new_id

    def request(self, integration_id: str, trigger: str, *, force: bool = False) -> str:
        request = SyncRequest(integration_id, self._new_id(), trigger, force)
        self._publisher.send(request.as_message())
        log.info("user sync %s requested for integration %s (%s%s)", request.run_id, integration_id, trigger,
                 ", forced" if force else "")
        return request.run_id

    def defer(self, request: SyncRequest, delay_seconds: float) -> int:
        """Puts the same request back, invisible for the delay; returns the delay used."""
        delay = max(1, min(MAX_DEFER_SECONDS, int(round(delay_seconds))))
        self._publisher.send(replace(request, deferrals=request.deferrals + 1).as_message(), delay_seconds=delay)
        log.info("user sync %s for integration %s deferred by %d s (deferral %d)", request.run_id,
                 request.integration_id, delay, request.deferrals + 1)
        return delay


# ---- one run -------------------------------------------------------------------------------------

@dataclass
class RunReport:
    run_id: str
    integration_id: str
    outcome: str
    kind: str | None = None
    counts: Counts = field(default_factory=Counts)
    graph_requests: int = 0
    table_transactions: int = 0
    events_published: int = 0
    message: str = ""


@dataclass
class _Round:
    kind: str
    entries: dict[str, DirectoryEntry]
    delta_link: str
    pages: int
    malformed: int


class UserSync:
    """Runs user syncs; every dependency with a side effect is passed in."""

    def __init__(self, *, integrations: IntegrationsRepo, users: UsersRepo, syncstate: SyncStateRepo,
                 access: GraphAccess, events: UserEventPublisher, default_max_share: float, email_guard: EmailGuard,
                 clock: Callable[[], datetime] = utc_now, page_size: int = DELTA_PAGE_SIZE,
                 full_read_writers: int = FULL_READ_WRITERS, requester: SyncRequester | None = None,
                 new_token: Callable[[], str] = lambda: uuid.uuid4().hex, leavers=None) -> None:
        self.requester = requester
        self.email_guard = email_guard
        self.new_token = new_token
        self._guarded: set[str] = set()
        self.leavers = leavers  # `leaver-releases`: the booking side releases a leaver's future bookings
        self.integrations = integrations
        self.users = users
        self.syncstate = syncstate
        self.access = access
        self.events = events
        self.default_max_share = default_max_share
        self.clock = clock
        self.page_size = page_size
        self.full_read_writers = full_read_writers

    def run(self, request: SyncRequest) -> RunReport:
        """Runs one requested sync. Returns a report for every outcome an admin handles through
        the status (guard, parked credentials); raises only for failures worth retrying."""
        report = RunReport(request.run_id, request.integration_id, FAILED)
        integration = self.integrations.get(request.integration_id)
        if integration is None:
            # Integration ids are never reused, so people left under a deleted one are leftovers.
            report.outcome = UNKNOWN_INTEGRATION
            report.table_transactions = self.users.purge(request.integration_id)
            log.info("user sync %s: integration %s no longer exists; %s", request.run_id, request.integration_id,
                     f"its people were removed ({report.table_transactions} transactions)"
                     if report.table_transactions else "nothing to do")
            return report
        if not integration.is_active:
            report.outcome = SKIPPED_INACTIVE
            log.warning("user sync %s skipped for integration %s: status %s (%s)", request.run_id, integration.id,
                        integration.status, integration.status_reason or "no reason recorded")
            return report
        started = self.clock()
        # The lease is this invocation's: a second delivery of the same message gets its own token.
        state = self.syncstate.acquire(integration.id, request.run_id, self.new_token(), started, RUN_LEASE)
        if state is None:
            return self._busy(request, integration, started, report)
        if state.last_run and state.last_run.run_id == request.run_id and state.last_run.outcome == APPLIED:
            report.outcome = DUPLICATE
            log.info("user sync %s for integration %s was already applied by another delivery", request.run_id,
                     integration.id)
            self._save_state(state.released())
            return report
        run = LastRun(run_id=request.run_id, trigger=request.trigger, kind=DELTA if state.delta_link else FULL,
                      forced=request.force, started_at=started, finished_at=None, outcome="running")
        try:
            report.events_published += self._deliver_pending_events(integration.id)
            self._sync(integration, request, state, run, report)
        except Exception as error:  # noqa: BLE001 -- recorded, then parked, deferred or re-raised below
            self._record_failure(integration, state, run, report, error)
            if report.outcome == CREDENTIALS_INVALID:
                return report
            if (_is_transient(error) or _is_unknown_token_error(error)) and self._defer(
                    request, _retry_delay(error, request), report):
                return report
            raise
        return report

    def _busy(self, request: SyncRequest, integration: Integration, now: datetime, report: RunReport) -> RunReport:
        report.outcome = SKIPPED_BUSY
        holder = self.syncstate.get(integration.id)
        if holder.lease_run_id == request.run_id:
            # Another delivery of this very message is running. Look again once its lease ends:
            # if it crashed, this copy is the one left to do the work.
            left = (holder.lease_until - now).total_seconds() if holder.lease_until else BUSY_DEFER_SECONDS
            log.info("user sync %s for integration %s: another delivery of this request is running", request.run_id,
                     integration.id)
            self._defer(request, max(BUSY_DEFER_SECONDS, left), report)
            return report
        log.info("user sync %s skipped for integration %s: another run is in progress", request.run_id,
                 integration.id)
        if request.force:  # an admin's explicit request must not be lost
            self._defer(request, BUSY_DEFER_SECONDS, report)
        return report

    def _defer(self, request: SyncRequest, delay_seconds: float | None, report: RunReport) -> bool:
        if self.requester is None or request.deferrals >= MAX_DEFERRALS:
            return False
        delay = self.requester.defer(request, delay_seconds or BUSY_DEFER_SECONDS)
        report.outcome = DEFERRED
        report.message = f"{report.message + '; ' if report.message else ''}retried in {delay} s"
        return True

    # ---- the steps --------------------------------------------------------------------------

    def _sync(self, integration: Integration, request: SyncRequest, state: UserSyncState, run: LastRun,
              report: RunReport) -> None:
        client = self.access.client_for(integration)
        try:
            verified = read_verified_domains(client, integration.granted_roles)
            round_ = self._read_round(client, state.delta_link)
            proofs = self._proofs(integration, verified, round_)
            if round_.kind == DELTA and set(proofs) != set(integration.proven_domains):
                log.info("user sync %s: the proven domains of integration %s change (%s -> %s); reading the whole "
                         "directory", request.run_id, integration.id, ", ".join(integration.proven_domains) or "none",
                         ", ".join(sorted(proofs)) or "none")
                pages = round_.pages
                round_ = self._read(client, None, FULL_AFTER_DOMAIN_CHANGE)
                round_.pages += pages
                proofs = self._proofs(integration, verified, round_)
        finally:
            client.close()
        report.kind, report.graph_requests = round_.kind, round_.pages
        now = self.clock()
        full = round_.kind != DELTA
        proven = [d for d in integration.domains if d in proofs]
        local, base = self._stored_people(integration.id, round_, full)
        plan = plan_users(integration.id, round_.entries, local, domains=proven, full_read=full, now=now,
                          unproven=[d for d in integration.domains if d not in proofs])
        plan.counts.malformed = round_.malformed
        report.counts = plan.counts
        round_.entries.clear()  # the plan holds what is needed; a first sync of 100,000 people is large
        del local
        run = replace(run, kind=round_.kind, counts=plan.counts.as_dict(), graph_requests=round_.pages)
        max_share = integration.options.max_deactivation_share or self.default_max_share
        verdict = check_guard(plan.deactivations, base.active, max_share)
        if verdict.tripped and not request.force:
            self._refuse(integration, request, state, run, report, verdict, now)
            return
        integration = self._save_proofs(integration, proofs, request.run_id)
        plan, changes = self._claim_addresses(integration, plan, request.run_id, now)
        report.counts = plan.counts
        result = self.users.apply(integration.id, plan.actions, changes, base=base, now=now,
                                  parallel=self.full_read_writers if full else 1)
        report.table_transactions = result.transactions
        self._release_addresses(integration, changes.released)
        if full and not plan.actions and base != self.users.summary(integration.id):
            self.users.set_summary(integration.id, base)  # a full read also corrects the counters
        report.events_published += self._publish(integration.id, result.events, report)
        report.outcome = APPLIED
        finished = self.clock()
        self._finish(state, replace(run, outcome=APPLIED, finished_at=finished,
                                    table_transactions=report.table_transactions),
                     guard=None, last_error=None, delta_link=round_.delta_link, succeeded_at=finished)
        log.info("user sync %s for integration %s applied (%s round%s): %s; %d Graph requests, %d transactions, "
                 "%d events", request.run_id, integration.id, round_.kind, ", forced" if request.force else "",
                 _counts_text(plan.counts), round_.pages, report.table_transactions, len(result.events))

    def _proofs(self, integration: Integration, verified: frozenset[str] | None, round_: "_Round") -> dict[str, str]:
        return prove_domains(integration.domains, verified=verified, upn_domains=upn_domains(round_.entries.values()),
                             previous=integration.domain_proofs, full_read=round_.kind != DELTA)

    def _save_proofs(self, integration: Integration, proofs: dict[str, str], run_id: str) -> Integration:
        """Records the domain proofs on the integration (ETag-guarded; an admin's concurrent change
        wins and the next run records them)."""
        if proofs == integration.domain_proofs:
            return integration
        try:
            saved = self.integrations.update(replace(integration, domain_proofs=dict(proofs)))
        except ConflictError:
            log.warning("user sync %s: integration %s changed meanwhile; its domain proofs are saved next time",
                        run_id, integration.id)
            return replace(integration, domain_proofs=dict(proofs))
        unproven = saved.unproven_domains
        log.info("integration %s: domains proven %s; unproven %s", integration.id,
                 ", ".join(f"{d} ({p})" for d, p in sorted(proofs.items())) or "none", ", ".join(unproven) or "none")
        return saved

    def _claim_addresses(self, integration: Integration, plan, run_id: str, now: datetime):
        """Claims the addresses people take in this run; people whose address another
        integration holds are kept inactive without it (and logged)."""
        changes = index_changes(plan.actions)
        if not changes.owners or self._domains_guarded(integration):
            return plan, changes
        refused = self.email_guard.claim(integration.id, changes.owners.keys())
        if not refused:
            return plan, changes
        for email, holder in refused.items():
            log.warning("user sync %s: integration %s: user %s refused: the address is held by integration %s",
                        run_id, integration.id, changes.owners[email], holder)
        plan = refuse_emails(plan, frozenset(refused), now)
        return plan, index_changes(plan.actions)

    def _domains_guarded(self, integration: Integration) -> bool:
        """Whether every claimed domain's guard row names this integration. Then its addresses are
        unique across integrations already: each lies in one of these domains, and no other
        integration can hold them. Only integrations without guard rows (connected before they
        existed) claim addresses one by one, which costs a first sync of 100,000 people about
        1,000 transactions more."""
        if integration.id in self._guarded:
            return True
        guarded = all(self.integrations.guard_owner(DOMAIN_GUARD, d) == integration.id for d in integration.domains)
        if guarded:
            self._guarded.add(integration.id)  # a guard row changes hands only when its integration goes
        return guarded

    def _release_addresses(self, integration: Integration, released) -> None:
        """Gives up addresses nobody of the integration holds any more (its index says so)."""
        integration_id = integration.id
        if not released or self._domains_guarded(integration):
            return
        still_held = self.users.index_rows(integration_id, released)
        self.email_guard.release(integration_id, [e for e in released if e not in still_held])

    def _stored_people(self, integration_id: str, round_: "_Round", full: bool) -> tuple[dict, Summary]:
        """The stored people the planner needs, and the counts the guard starts from: everyone
        (recounted) for a full read, only the people the round mentions for a delta round."""
        if full:
            local = {user.id: user for user in self.users.all(integration_id)}
            return local, Summary(active=sum(1 for u in local.values() if u.active), total=len(local))
        return self.users.get_many(integration_id, round_.entries.keys()), self.users.summary(integration_id)

    def _refuse(self, integration: Integration, request: SyncRequest, state: UserSyncState, run: LastRun,
                report: RunReport, verdict, now: datetime) -> None:
        """The guard said no: nothing is written and the deltaLink stays, so the same changes
        come back next time; the status shows why until a forced run applies them."""
        report.outcome = GUARD_REFUSED
        report.message = verdict.explain()
        guard = {"tripped_at": iso_utc(now), "run_id": request.run_id, "would_deactivate": verdict.would_deactivate,
                 "active_users": verdict.active_before, "max_share": verdict.max_share, "limit": verdict.limit,
                 "reason": verdict.explain()}
        log.warning("user sync %s for integration %s refused by the guard: %s", request.run_id, integration.id,
                    verdict.explain())
        self._finish(state, replace(run, outcome=GUARD_REFUSED, finished_at=self.clock()), guard=guard,
                     last_error=verdict.explain())

    def _read_round(self, client, delta_link: str | None) -> _Round:
        if delta_link:
            try:
                return self._read(client, delta_link, DELTA)
            except DeltaExpired:
                log.info("users delta link expired; reading the whole directory again")
                return self._read(client, None, FULL_AFTER_EXPIRY)
        return self._read(client, None, FULL)

    def _read(self, client, delta_link: str | None, kind: str) -> _Round:
        reader = delta_reader(client, delta_link, select=SELECT_FIELDS, page_size=self.page_size)
        entries: dict[str, DirectoryEntry] = {}
        malformed = 0
        for page in reader.pages():
            parsed = []
            for item in page:
                try:
                    parsed.append(parse_entry(item))
                except MalformedEntry:
                    malformed += 1
            merge_entries(parsed, into=entries)
        return _Round(kind, entries, reader.delta_link, reader.pages_read, malformed)

    def _deliver_pending_events(self, integration_id: str) -> int:
        """Events a crashed run committed but never put on the queue go out first."""
        pending = self.users.pending_events(integration_id)
        if pending:
            log.info("delivering %d user events left by an earlier run of integration %s", len(pending),
                     integration_id)
        return self._publish(integration_id, pending, None)

    def _publish(self, integration_id: str, events, report: RunReport | None) -> int:
        """Sends and clears the events a chunk at a time: a failure part way leaves only the
        unsent chunks pending (at most one chunk is sent twice; consumers drop repeats by event_id)."""
        for start in range(0, len(events), OUTBOX_CHUNK):
            chunk = events[start:start + OUTBOX_CHUNK]
            for event in chunk:
                self.events.publish(event)
                if self.leavers is not None and event.type == "user.deactivated":
                    self.leavers.send({"integration_id": event.integration_id, "user_id": event.user_id})
            transactions = self.users.clear_events(integration_id, chunk)
            if report is not None:
                report.table_transactions += transactions
        return len(events)

    def _finish(self, state: UserSyncState, run: LastRun, *, guard: dict | None, last_error: str | None,
                delta_link: str | None = None, succeeded_at: datetime | None = None,
                token_error: tuple[int | None, int] = (None, 0)) -> None:
        now = self.clock()
        updated = replace(state.released(), last_run=run, guard=guard, last_error=last_error,
                          last_error_at=now if last_error else state.last_error_at,
                          token_error_code=token_error[0], token_error_repeats=token_error[1])
        if delta_link:
            updated = replace(updated, delta_link=delta_link, delta_link_saved_at=now)
        if succeeded_at:
            updated = replace(updated, last_success_at=succeeded_at)
        self._save_state(updated, run.run_id)

    def _save_state(self, state: UserSyncState, run_id: str | None = None) -> None:
        try:
            self.syncstate.save(state)
        except ConflictError:
            log.warning("user sync %s: the sync state changed under this run (its lease ran out); "
                        "its result was not recorded", run_id or (state.last_run.run_id if state.last_run else "?"))

    def _record_failure(self, integration: Integration, state: UserSyncState, run: LastRun, report: RunReport,
                        error: BaseException) -> None:
        reason = _describe(error)
        token_error: tuple[int | None, int] = (None, 0)
        if isinstance(error, TokenServiceUnavailable):
            token_error = (state.token_error_code, state.token_error_repeats)  # says nothing either way
        if _is_unknown_token_error(error):
            repeats = state.token_error_repeats + 1 if state.token_error_code == error.aadsts else 1
            token_error = (error.aadsts, repeats)
            log.warning("user sync %s for integration %s: Entra ID refused the token with AADSTS%s, a code this app "
                        "does not know (%d run(s) in a row; parked at %d): %s", run.run_id, integration.id,
                        error.aadsts, repeats, UNKNOWN_TOKEN_ERROR_PARK_AFTER, reason)
            if repeats >= UNKNOWN_TOKEN_ERROR_PARK_AFTER:
                reason = (f"Entra ID refused the app's token {repeats} runs in a row with AADSTS{error.aadsts}: "
                          f"{error}; check the app registration, then replace the client secret to resume")[:600]
                report.outcome = CREDENTIALS_INVALID
                park_integration(self.integrations, integration.id, reason, self.clock(),
                                 unless_changed_after=run.started_at)
                log.warning("user sync %s: integration %s parked (credentials_invalid): %s", run.run_id,
                            integration.id, reason)
                report.message = reason
                self._finish(state, replace(run, outcome=report.outcome, finished_at=self.clock()),
                             guard=state.guard, last_error=reason, token_error=token_error)
                return
        if is_credentials_problem(error):
            reason = credentials_reason(error)
            report.outcome = CREDENTIALS_INVALID
            park_integration(self.integrations, integration.id, reason, self.clock(),
                             unless_changed_after=run.started_at)
            log.warning("user sync %s: integration %s parked (credentials_invalid): %s", run.run_id,
                        integration.id, reason)
        else:
            report.outcome = FAILED
            level = logging.WARNING if _is_transient(error) else logging.ERROR
            log.log(level, "user sync %s for integration %s failed: %s", run.run_id, integration.id, reason)
        report.message = reason
        self._finish(state, replace(run, outcome=report.outcome, finished_at=self.clock()), guard=state.guard,
                     last_error=reason, token_error=token_error)


def _is_transient(error: BaseException) -> bool:
    """Failures Graph or Entra heal by themselves: worth a deferred retry, not the poison queue."""
    return isinstance(error, (Throttled, TokenServiceUnavailable)) or (
        isinstance(error, GraphError) and (error.status == 0 or 500 <= error.status <= 599))


def _is_unknown_token_error(error: BaseException) -> bool:
    """A token refusal whose AADSTS code maps to none of the typed errors."""
    return (isinstance(error, TokenError) and not isinstance(error, (TokenServiceUnavailable, *PERMANENT_TOKEN_ERRORS))
            and error.aadsts is not None)


def _retry_delay(error: BaseException, request: SyncRequest) -> float:
    """Graph's Retry-After when it gave one, else a wait doubling with each deferral."""
    if isinstance(error, Throttled) and error.retry_after:
        return error.retry_after
    return min(MAX_DEFER_SECONDS, TRANSIENT_DEFER_SECONDS * 2 ** min(request.deferrals, 10))


def _describe(error: BaseException) -> str:
    """A reason safe to store and show: our typed errors are written to carry no secrets; for
    anything else only the type is kept."""
    if isinstance(error, (GraphError, TokenError, StoreError, SecretUnreadable)):
        return f"{type(error).__name__}: {error}"[:600]
    return f"{type(error).__name__} (see the function logs)"


def _counts_text(counts: Counts) -> str:
    return ", ".join(f"{name}={value}" for name, value in counts.as_dict().items())


# ---- the nightly schedule ------------------------------------------------------------------------

@dataclass
class ScheduleReport:
    requested: dict[str, str] = field(default_factory=dict)  # integration id -> run id
    skipped: dict[str, str] = field(default_factory=dict)  # integration id -> status
    warnings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def schedule_user_syncs(integrations: IntegrationsRepo, requester: SyncRequester,
                        clock: Callable[[], datetime] = utc_now) -> ScheduleReport:
    """Requests one run per active integration; parked ones get one log line each, and secrets
    close to expiry are logged as warnings (the status shows them too)."""
    report = ScheduleReport()
    now = clock()
    for integration in integrations.list():
        warnings = secret_expiry_warnings(integration.secret_expires_at, now)
        if warnings:
            report.warnings[integration.id] = warnings
            log.warning("integration %s: %s", integration.id, warnings[0]["message"])
        if not integration.is_active:
            report.skipped[integration.id] = integration.status
            log.warning("nightly user sync skipped for integration %s: status %s (%s)", integration.id,
                        integration.status, integration.status_reason or "no reason recorded")
            continue
        report.requested[integration.id] = requester.request(integration.id, SCHEDULE)
    return report


# ---- listing people for the API ------------------------------------------------------------------

LIST_PARAMETERS = frozenset({"integration_id", "active", "page_size", "continuation"})


class UserListing:
    """`GET /api/users`: people page by page, optionally of one integration, optionally only the
    (in)active ones. The continuation token is opaque; a page may be short and still continue.
    People of an integration being deleted (or gone) are never listed: asking for them by
    integration answers 404, and pages across integrations leave them out."""

    def __init__(self, users: UsersRepo, integrations: IntegrationsRepo) -> None:
        self.users = users
        self.integrations = integrations

    def page(self, params: Mapping[str, str]) -> dict[str, Any]:
        validation.reject_unknown_params(params, LIST_PARAMETERS)
        integration_id = params.get("integration_id") or None
        if integration_id is not None:
            integration_id = validation.guid("integration_id", integration_id)
            require_live_integration(self.integrations, integration_id)
        active = validation.flag("active", params.get("active"), default=None)
        size = validation.page_size(params.get("page_size"))
        try:
            people, continuation = self.users.page(integration_id=integration_id, active=active, page_size=size,
                                                   continuation=params.get("continuation") or None)
        except BadContinuation:
            raise validation.Problem(400, "invalid_continuation", "continuation: not a token this API handed out; "
                                     "start again without it", field="continuation") from None
        live = {integration_id} if integration_id else live_integration_ids(self.integrations)
        return {"value": [user_view(user) for user in people if user.integration_id in live],
                "continuation": continuation}


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id, "integration_id": user.integration_id, "email": user.email, "mail": user.mail,
        "user_principal_name": user.user_principal_name, "display_name": user.display_name,
        "given_name": user.given_name, "surname": user.surname, "department": user.department,
        "job_title": user.job_title, "office_location": user.office_location, "user_type": user.user_type,
        "account_enabled": user.account_enabled, "active": user.active,
        "deactivated_at": iso_utc(user.deactivated_at), "deactivation_reason": user.deactivation_reason,
        "created_at": iso_utc(user.created_at), "updated_at": iso_utc(user.updated_at),
    }
