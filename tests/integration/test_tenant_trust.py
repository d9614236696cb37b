"""Tenant trust and the user sync's delivery rules, against real Azurite and the Graph emulator:
only domains proven verified in the tenant activate people, addresses are unique across
integrations, the outbox clears chunk by chunk, one message never runs twice at once, and
failures Graph or Entra heal are deferred instead of poisoning the message."""
from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

import pytest

from devtools.graph_emulator import users as directory
from graph.auth import forget_shared_apps
from sync.model import ACTIVE, CREDENTIALS_INVALID, REASON_EMAIL_IN_USE
from sync.purge import IntegrationPurge, StepProgress
from sync.store.email_guard_repo import EmailGuard
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo
from sync.users import APPLIED, DEFERRED, OUTBOX_CHUNK, UNKNOWN_TOKEN_ERROR_PARK_AFTER, SyncRequest
from tests.integration.test_user_sync import Control, make_harness
from tests.support.emulator_fixture import new_tenant


@pytest.fixture
def harness(graph_emulator, storage_connection_string, unique_name):
    return make_harness(graph_emulator, storage_connection_string, unique_name, max_retry_wait=0)


def foreign_domain() -> str:
    return f"victim{uuid.uuid4().hex[:10]}.example.com"


# ---- verified domains ------------------------------------------------------------------------------

def test_a_claimed_domain_nobody_signs_in_with_stays_unproven_and_mail_never_makes_a_member(harness,
                                                                                            graph_emulator):
    """The tenant claims another company's domain and sets `mail` to its addresses: without a
    UPN there (Entra would refuse one) the domain is unproven and nobody is let in with it."""
    victim = foreign_domain()
    new_tenant(graph_emulator, domain=victim, users=1)  # where the domain really is verified
    tenant = new_tenant(graph_emulator, users=2, roles={"User.Read.All"})
    initial = tenant.tenant.domains[1]
    control = Control(graph_emulator)
    insider = tenant.users[0]
    control.patch_user(tenant, insider.id, mail=f"ceo@{victim}")
    outsider = control.add_user(tenant, alias="intruder", userPrincipalName=f"intruder@{initial}",
                                mail=f"cfo@{victim}")

    created = harness.connect(tenant, domains=[tenant.domain, victim])
    assert created["unproven_domains"] == [tenant.domain, victim]  # nothing proven before the first sync
    assert created["optional_permissions"][0]["granted"] is False
    report = harness.run_one(created["id"])

    assert report.outcome == APPLIED
    people = harness.people(created["id"])
    assert people[insider.id].active and people[insider.id].email == insider.user_principal_name.lower()
    assert outsider["id"] not in people and report.counts.skipped_out_of_domain == 1
    assert all(not (u.email or "").endswith(victim) for u in people.values())
    view = harness.service.get(created["id"])
    assert view["domain_proofs"] == [{"name": tenant.domain, "proven": True, "proof": "upn"},
                                     {"name": victim, "proven": False, "proof": None}]
    assert view["unproven_domains"] == [victim] and view["domains"] == [tenant.domain, victim]
    status = harness.service.status(created["id"])
    assert any(w["code"] == "unproven_domains" and w["domains"] == [victim] for w in status["warnings"])


def test_with_organization_read_all_the_tenants_verified_domains_decide(harness, graph_emulator):
    claimed = foreign_domain()
    tenant = new_tenant(graph_emulator, users=2, roles={"User.Read.All", "Organization.Read.All"})
    control = Control(graph_emulator)
    # The emulator lets a UPN use an unverified domain (Entra would not): the organization wins.
    early = control.add_user(tenant, alias="early", userPrincipalName=f"early@{claimed}", mail=f"early@{claimed}")

    created = harness.connect(tenant, domains=[tenant.domain, claimed])

    assert created["domain_proofs"] == [{"name": tenant.domain, "proven": True, "proof": "organization"},
                                        {"name": claimed, "proven": False, "proof": None}]
    assert created["optional_permissions"] == [{"permission": "Organization.Read.All", "granted": True,
                                                "enables": created["optional_permissions"][0]["enables"]}]
    report = harness.run_one(created["id"])
    assert report.counts.skipped_unproven_domain == 1 and early["id"] not in harness.people(created["id"])

    # The tenant verifies the domain: the next run reads everyone again and lets its people in.
    control("PUT", f"/tenants/{tenant.tenant_id}/verified-domains",
            {"domains": [tenant.domain, tenant.tenant.domains[1], claimed]})
    harness.service.request_user_sync(created["id"], force=False)
    report = harness.run_one(created["id"])

    assert report.kind == "full_after_domain_change" and report.counts.created == 1
    assert harness.people(created["id"])[early["id"]].active
    assert harness.service.get(created["id"])["unproven_domains"] == []

    # And when it is no longer verified there, its people leave.
    control("PUT", f"/tenants/{tenant.tenant_id}/verified-domains", {"domains": [tenant.domain]})
    harness.service.request_user_sync(created["id"], force=False)
    report = harness.run_one(created["id"])
    person = harness.people(created["id"])[early["id"]]
    assert report.kind == "full_after_domain_change" and not person.active and person.email is None
    assert EmailGuard(harness.store).owner(f"early@{claimed}") is None


def without_domain_guards(harness, integration_id: str) -> None:
    """Makes the integration look like one connected before guard rows existed."""
    table = harness.store.table("integrations")
    for row in list(table.query(partition="integrations")):
        if row.get("IntegrationId") == integration_id and row.get("Kind") == "domain":
            table.delete("integrations", row["RowKey"])


def test_an_address_held_by_another_integration_is_refused_and_logged(harness, graph_emulator, caplog):
    """Integrations whose domains are not guarded (connected before guard rows existed) claim each
    address; one another integration holds is refused."""
    tenant = new_tenant(graph_emulator, users=3)
    created = harness.connect(tenant)
    without_domain_guards(harness, created["id"])
    taken = tenant.users[0]
    elsewhere = str(uuid.uuid4())  # an integration of the same domain from the same era
    guard = EmailGuard(harness.store)
    assert guard.claim(elsewhere, [taken.mail]) == {}

    with caplog.at_level(logging.WARNING, logger="sync.users"):
        report = harness.run_one(created["id"])

    assert report.outcome == APPLIED and report.counts.refused_email_in_use == 1
    person = harness.people(created["id"])[taken.id]
    assert (person.active, person.email, person.deactivation_reason) == (False, None, REASON_EMAIL_IN_USE)
    assert UsersRepo(harness.store).get_by_email(created["id"], taken.mail) is None
    assert guard.owner(taken.mail) == elsewhere  # never merged, never taken over
    assert any(taken.id in r.getMessage() and elsewhere in r.getMessage() for r in caplog.records)
    others = [u for u in harness.people(created["id"]).values() if u.id != taken.id]
    assert all(u.active and guard.owner(u.email) == created["id"] for u in others)
    # A rename gives the old address up.
    renamed = tenant.users[1]
    old_address = renamed.mail
    harness.control.patch_user(tenant, renamed.id, mail=f"renamed@{tenant.domain}",
                               userPrincipalName=f"renamed@{tenant.domain}")
    harness.service.request_user_sync(created["id"], force=False)
    assert harness.run_one(created["id"]).outcome == APPLIED
    assert guard.owner(old_address) is None and guard.owner(f"renamed@{tenant.domain}") == created["id"]


def test_two_integrations_claiming_one_address_at_once_get_it_once(harness):
    guard = EmailGuard(harness.store)
    address = f"shared@{foreign_domain()}"
    claimants = [str(uuid.uuid4()) for _ in range(8)]
    start = threading.Barrier(len(claimants))
    results: dict[str, dict] = {}

    def claim(integration_id: str) -> None:
        start.wait()
        results[integration_id] = guard.claim(integration_id, [address])

    threads = [threading.Thread(target=claim, args=(c,)) for c in claimants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [c for c, refused in results.items() if not refused]
    assert len(winners) == 1 and guard.owner(address) == winners[0]
    assert all(refused == {address: winners[0]} for c, refused in results.items() if c != winners[0])
    assert guard.claim(winners[0], [address]) == {}  # claiming again is fine for the holder
    guard.release(claimants[-1] if claimants[-1] != winners[0] else claimants[0], [address])
    assert guard.owner(address) == winners[0]  # only the holder can give it up
    guard.release(winners[0], [address])
    assert guard.owner(address) is None


# ---- the outbox ------------------------------------------------------------------------------------

def test_the_outbox_is_cleared_chunk_by_chunk_and_events_keep_their_ids(harness, graph_emulator):
    people = OUTBOX_CHUNK + 20
    tenant = new_tenant(graph_emulator, users=people)
    integration_id = harness.connect(tenant, options={"max_deactivation_share": 1})["id"]
    harness.run_one(integration_id)
    for person in tenant.users[:people - 5]:
        directory.disable_user(graph_emulator.world, tenant.tenant, person.id)
    working = harness.sync.events
    sent: list = []

    class FailsPartWay:
        def publish(self, event):
            if len(sent) == OUTBOX_CHUNK + 10:
                raise ConnectionError("queue unavailable")
            sent.append(event.event_id)
            working.publish(event)

    harness.sync.events = FailsPartWay()
    harness.service.request_user_sync(integration_id, force=False)
    with pytest.raises(ConnectionError):
        harness.run_one(integration_id)

    pending = UsersRepo(harness.store).pending_events(integration_id)
    assert len(pending) == people - 5 - OUTBOX_CHUNK  # the first chunk was sent and cleared
    assert {e.event_id for e in pending} >= set(sent[OUTBOX_CHUNK:])

    harness.sync.events = working
    harness.service.request_user_sync(integration_id, force=False)
    assert harness.run_one(integration_id).events_published == len(pending)
    delivered = harness.events()
    ids = [e["event_id"] for e in delivered]
    assert set(ids) == set(sent) | {e.event_id for e in pending} and len(set(ids)) == people - 5
    # The ten sent before the failure went out twice, with the same id each time.
    assert sorted(i for i in set(ids) if ids.count(i) == 2) == sorted(sent[OUTBOX_CHUNK:])


# ---- one delivery at a time -----------------------------------------------------------------------

class HoldsTheFirstRun:
    """Delegates to the real GraphAccess; the first run waits inside until released."""

    def __init__(self, access) -> None:
        self.access = access
        self.inside = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.access, name)

    def client_for(self, integration):
        self.calls += 1
        if self.calls == 1:
            self.inside.set()
            assert self.release.wait(30)
        return self.access.client_for(integration)


def test_two_deliveries_of_one_message_never_run_at_once(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=3)
    integration_id = harness.connect(tenant)["id"]
    (message,) = harness.sync_messages()
    request = SyncRequest.from_message(message)
    held = HoldsTheFirstRun(harness.access)
    harness.sync.access = held
    reports = {}
    first = threading.Thread(target=lambda: reports.setdefault("first", harness.sync.run(request)))
    first.start()
    try:
        assert held.inside.wait(30)
        second = harness.sync.run(request)  # the same message, delivered again meanwhile
    finally:
        held.release.set()
        first.join(30)

    assert reports["first"].outcome == APPLIED
    assert second.outcome == DEFERRED and held.calls == 1  # it never reached Graph
    client = harness.queues.get_queue_client(harness.sync_queue)
    assert client.get_queue_properties().approximate_message_count == 1  # kept for after the lease
    # When the copy comes back, the request is recognised as done.
    late = harness.sync.run(request)
    assert late.outcome == "duplicate" and harness.state(integration_id).lease_token is None


# ---- failures that heal ---------------------------------------------------------------------------

@pytest.mark.parametrize("path, status", [(r"/v1\.0/users/delta", 500), (r"/oauth2/v2\.0/token", 503)])
def test_failures_graph_or_entra_heal_are_deferred_with_the_same_run_id(harness, graph_emulator, path, status):
    tenant = new_tenant(graph_emulator, users=2)
    created = harness.connect(tenant)
    harness.sync_messages()
    forget_shared_apps()  # the connect's cached token would hide the token endpoint
    harness.control("POST", "/faults", {"method": "*", "path": path, "status": status, "count": 1,
                                         "tenant": tenant.tenant_id, "retry_after": None})

    report = harness.sync.run(SyncRequest(created["id"], "run-heal", "manual"))

    assert report.outcome == DEFERRED and "retried in 60 s" in report.message
    client = harness.queues.get_queue_client(harness.sync_queue)
    assert client.get_queue_properties().approximate_message_count == 1
    state = harness.state(created["id"])
    assert state.last_run.outcome == "failed" and state.lease_token is None
    forget_shared_apps()  # MSAL replays a failed token answer for a minute; the deferral waits that out
    assert harness.sync.run(SyncRequest(created["id"], "run-heal", "manual", deferrals=1)).outcome == APPLIED


def test_an_unknown_aadsts_code_is_shown_then_parks_the_integration_when_it_repeats(harness, graph_emulator,
                                                                                      caplog):
    tenant = new_tenant(graph_emulator, users=2)
    created = harness.connect(tenant)
    harness.sync_messages()
    forget_shared_apps()
    harness.control("POST", "/faults", {"method": "POST", "path": r"/oauth2/v2\.0/token", "status": 400,
                                         "tenant": tenant.tenant_id,
                                         "body": {"code": "invalid_request",
                                                  "message": "AADSTS9999999: A refusal nobody has seen before."}})
    outcomes = []
    with caplog.at_level(logging.WARNING, logger="sync.users"):
        for attempt in range(UNKNOWN_TOKEN_ERROR_PARK_AFTER):
            outcomes.append(harness.sync.run(SyncRequest(created["id"], "run-x", "manual", deferrals=attempt)).outcome)
            if attempt == 0:
                status = harness.service.status(created["id"])
                assert status["user_sync"]["token_error"] == {"aadsts": 9999999, "repeats": 1}
                assert "AADSTS9999999" in status["user_sync"]["last_error"] and status["status"] == ACTIVE

    assert outcomes == [DEFERRED] * (UNKNOWN_TOKEN_ERROR_PARK_AFTER - 1) + ["credentials_invalid"]
    parked = harness.integration(created["id"])
    assert parked.status == CREDENTIALS_INVALID and "AADSTS9999999" in parked.status_reason
    assert sum("AADSTS9999999" in r.getMessage() for r in caplog.records) >= UNKNOWN_TOKEN_ERROR_PARK_AFTER


# ---- the purge ---------------------------------------------------------------------------------------

class CrashesOnce:
    """A step a later part of the app adds (say, Graph subscriptions): fails once part way."""

    name = "subscriptions"

    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[str] = []

    def purge(self, integration):
        self.calls += 1
        self.seen.append(integration.id)
        if self.calls == 1:
            raise ConnectionError("Graph went away")
        return StepProgress(done=True, removed=2)


def test_a_purge_waits_for_a_running_sync_and_resumes_after_a_crash_without_redoing_steps(
        graph_emulator, storage_connection_string, unique_name):
    harness = make_harness(graph_emulator, storage_connection_string, unique_name)
    tenant = new_tenant(graph_emulator, users=3)
    integration_id = harness.connect(tenant)["id"]
    harness.run_one(integration_id)
    extra = CrashesOnce()
    steps = list(harness.purge.steps)
    steps.insert(len(steps) - 1, extra)  # before sync-state, as functions/context.py says
    purge = IntegrationPurge(integrations=harness.purge.integrations, steps=steps, requester=harness.purge.requester,
                             clock=harness.clock)
    running = SyncStateRepo(harness.store).acquire(integration_id, "a-run", "its-token", harness.clock(),
                                                   timedelta(minutes=15))
    assert running is not None
    harness.service.delete(integration_id)
    (message,) = harness.purge_messages()

    waiting = purge.run(message["integration_id"])

    assert waiting.outcome == "in_progress" and waiting.steps_done == []
    client = harness.queues.get_queue_client(harness.purge_queue)
    assert client.get_queue_properties().approximate_message_count == 1  # hidden until the lease ends
    assert harness.sync.run(SyncRequest(integration_id, "late", "manual")).outcome == "skipped_inactive"

    harness.clock.advance(minutes=16)  # the run's lease ran out (it crashed, say)
    with pytest.raises(ConnectionError):
        purge.run(integration_id)
    assert harness.integration(integration_id).purged_steps == ("user-sync-lease", "email-guard", "people")
    assert harness.people(integration_id) == {}

    done = purge.run(integration_id)
    assert done.outcome == "removed" and done.steps_done == ["subscriptions", "sync-state"]
    assert extra.calls == 2 and harness.integration(integration_id) is None
    assert purge.run(integration_id).outcome == "already_gone"
