"""User sync against real Azurite and the Graph emulator over HTTPS (real msal and requests).

Directory changes are made through the emulator's control API, as a tenant's operator would
make them in Entra ID; runs are requested through the real user-sync queue and executed from
the message found there; user events are read back from their queue.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import requests

from graph import GraphConfig
from sync.credentials import GraphAccess
from sync.events_out import QueuePublisher, UserEventPublisher
from sync.integrations import IntegrationService
from sync.model import ACTIVE, CREDENTIALS_INVALID, USERS_AND_CALENDARS
from sync.secret_box import SecretBox, SecretUnreadable
from sync.store import Store, StorageLocation, etag_of, queue_service, table_service
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo, email_row_key
from sync.users import (
    APPLIED, CREDENTIALS_INVALID as RUN_PARKED, DELTA, FULL, FULL_AFTER_EXPIRY, GUARD_REFUSED, SKIPPED_INACTIVE,
    SyncRequest, SyncRequester, UserSync, schedule_user_syncs,
)
from sync.validation import Problem
from tests.support.emulator_fixture import EmulatorTenant, new_tenant, start_emulator
from tests.support.polling import wait_for


class MovableClock:
    """Our side's clock (the emulator has its own)."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta) -> None:
        with self._lock:
            self.offset += timedelta(**delta)


class Control:
    """The emulator's control API, acting as the tenant's operator."""

    def __init__(self, server) -> None:
        self.server = server

    def __call__(self, method: str, path: str, body: dict | None = None):
        response = requests.request(method, f"{self.server.base_url}/_control{path}", json=body,
                                    verify=self.server.ca_path, timeout=30)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def user(self, tenant: EmulatorTenant, user_id: str, action: str):
        return self("POST", f"/tenants/{tenant.tenant_id}/users/{user_id}/{action}")

    def patch_user(self, tenant: EmulatorTenant, user_id: str, **changes):
        return self("PATCH", f"/tenants/{tenant.tenant_id}/users/{user_id}", changes)

    def add_user(self, tenant: EmulatorTenant, **spec) -> dict:
        return self("POST", f"/tenants/{tenant.tenant_id}/users", {"users": [spec]})["value"][0]


@dataclass
class Harness:
    """The services wired as the app wires them, on unique queues, with a movable clock."""

    server: object
    store: Store
    queues: object
    sync_queue: str
    events_queue: str
    clock: MovableClock
    access: GraphAccess
    service: IntegrationService
    sync: UserSync
    control: Control
    unsubscribed: list = field(default_factory=list)
    mine: set = field(default_factory=set)

    def connect(self, tenant: EmulatorTenant, **extra) -> dict:
        body = {"domains": [tenant.domain], "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
                "client_secret": tenant.client_secret, **extra}
        created = self.service.create(body)
        self.mine.add(created["id"])
        return created

    def sync_messages(self) -> list[dict]:
        client = self.queues.get_queue_client(self.sync_queue)
        found = []
        for message in client.receive_messages(messages_per_page=32, visibility_timeout=60):
            found.append(json.loads(base64.b64decode(message.content, validate=True)))
            client.delete_message(message)
        return found

    def run_requested(self):
        """Executes the queued sync requests, as the worker does. The tables are shared with
        other tests, so the nightly schedule also queues their integrations: those are dropped."""
        return [self.sync.run(SyncRequest.from_message(m)) for m in self.sync_messages()
                if m["integration_id"] in self.mine]

    def run_one(self, integration_id: str):
        (report,) = [r for r in self.run_requested() if r.integration_id == integration_id]
        return report

    def events(self) -> list[dict]:
        client = self.queues.get_queue_client(self.events_queue)
        found = []
        try:
            for message in client.receive_messages(messages_per_page=32, visibility_timeout=60):
                found.append(json.loads(base64.b64decode(message.content, validate=True)))
                client.delete_message(message)
        except Exception as error:  # the queue appears with its first event
            if "QueueNotFound" not in str(error):
                raise
        return found

    def people(self, integration_id: str) -> dict:
        return {u.id: u for u in UsersRepo(self.store).all(integration_id)}

    def state(self, integration_id: str):
        return SyncStateRepo(self.store).get(integration_id)

    def integration(self, integration_id: str):
        return IntegrationsRepo(self.store).get(integration_id)


def make_harness(server, connection_string: str, unique_name, max_retry_wait: float = 30.0) -> Harness:
    location = StorageLocation(connection_string=connection_string)
    store = Store(table_service(location))
    queues = queue_service(location)
    sync_queue, events_queue = unique_name("sync"), unique_name("events")
    clock = MovableClock()
    config = GraphConfig(authority_host=server.authority_host, api_base=server.api_base, ca_bundle=server.ca_path,
                         max_retry_wait=max_retry_wait)
    access = GraphAccess(config, SecretBox(os.urandom(32)))
    requester = SyncRequester(QueuePublisher(queues, sync_queue))
    unsubscribed: list = []

    def unsubscribe(integration) -> int:
        unsubscribed.append(integration.id)
        return 0

    service = IntegrationService(integrations=IntegrationsRepo(store), syncstate=SyncStateRepo(store),
                                 users=UsersRepo(store), access=access, requester=requester, default_max_share=0.2,
                                 unsubscribe_assets=unsubscribe, clock=clock)
    sync = UserSync(integrations=IntegrationsRepo(store), users=UsersRepo(store), syncstate=SyncStateRepo(store),
                    access=access, events=UserEventPublisher(QueuePublisher(queues, events_queue)),
                    default_max_share=0.2, clock=clock, requester=requester)
    return Harness(server, store, queues, sync_queue, events_queue, clock, access, service, sync, Control(server),
                   unsubscribed)


@pytest.fixture
def harness(graph_emulator, storage_connection_string, unique_name) -> Harness:
    return make_harness(graph_emulator, storage_connection_string, unique_name)


def demo_like_tenant(server, people: int = 20) -> EmulatorTenant:
    """Like the demo seed: people (the last one disabled), two room mailboxes (sign-in blocked)
    and one account outside the integration's domain."""
    tenant = new_tenant(server, users=people, rooms=2)
    Control(server).user(tenant, tenant.users[-1].id, "disable")
    outsider = f"contractor@{tenant.tenant.domains[1]}"
    Control(server).add_user(tenant, alias="contractor", userPrincipalName=outsider, mail=outsider)
    return tenant


def test_first_sync_of_a_demo_like_tenant(harness, graph_emulator):
    tenant = demo_like_tenant(graph_emulator)
    created = harness.connect(tenant)
    assert created["mode"] == USERS_AND_CALENDARS and created["status"] == ACTIVE
    harness.store.stats.reset()

    report = harness.run_one(created["id"])

    assert report.outcome == APPLIED and report.kind == FULL
    assert report.counts.as_dict() == {"created": 22, "updated": 0, "deactivated": 0, "reactivated": 0,
                                       "unchanged": 0, "skipped_out_of_domain": 1, "malformed": 0}
    people = harness.people(created["id"])
    assert len(people) == 22
    active = {u.email for u in people.values() if u.active}
    expected = {u.mail.lower() for u in tenant.users[:-1]}
    assert active == expected
    disabled = people[tenant.users[-1].id]
    assert not disabled.active and disabled.deactivation_reason == "disabled"
    rooms = [people[r.user_id] for r in tenant.rooms]
    assert all(not r.active for r in rooms)
    # One Graph page; people, index rows and counters in one transaction (44 writes + summary).
    assert report.graph_requests == 1 and report.table_transactions == 1
    assert harness.store.stats.transactions == 1
    users = UsersRepo(harness.store)
    first = tenant.users[0]
    assert users.get_by_email(created["id"], first.mail.upper()).id == first.id
    assert users.summary(created["id"]).active == 19 and users.summary(created["id"]).total == 22
    state = harness.state(created["id"])
    assert state.delta_link and state.last_run.outcome == APPLIED and state.last_run.trigger == "initial"
    assert harness.events() == []


def test_the_next_run_reflects_exactly_the_directory_changes(harness, graph_emulator):
    tenant = demo_like_tenant(graph_emulator)
    created = harness.connect(tenant)
    integration_id = created["id"]
    harness.run_one(integration_id)
    leaver, deleted, renamed = tenant.users[0], tenant.users[1], tenant.users[2]
    old_address = renamed.mail  # the fixture's objects are the emulator's live records
    control = harness.control
    control.user(tenant, leaver.id, "disable")
    control.user(tenant, deleted.id, "soft-delete")
    new_address = f"renamed.person@{tenant.domain}"
    control.patch_user(tenant, renamed.id, mail=new_address, userPrincipalName=new_address)
    newcomer = control.add_user(tenant, alias="newcomer", department="Research")
    before = harness.state(integration_id).delta_link
    harness.store.stats.reset()

    harness.service.request_user_sync(integration_id, force=False)
    report = harness.run_one(integration_id)

    assert report.outcome == APPLIED and report.kind == DELTA
    assert report.counts.as_dict() == {"created": 1, "updated": 1, "deactivated": 2, "reactivated": 0,
                                       "unchanged": 0, "skipped_out_of_domain": 0, "malformed": 0}
    assert report.graph_requests == 1
    # One transaction for the people (with outbox rows) and one to clear the delivered events.
    assert harness.store.stats.transactions == 2
    people = harness.people(integration_id)
    assert not people[leaver.id].active and people[leaver.id].deactivation_reason == "disabled"
    assert not people[deleted.id].active and people[deleted.id].deactivation_reason == "removed"
    assert people[renamed.id].email == new_address and people[renamed.id].active
    assert people[newcomer["id"]].active and people[newcomer["id"]].department == "Research"
    users = UsersRepo(harness.store)
    assert users.get_by_email(integration_id, old_address) is None
    assert harness.store.table("users").get(integration_id, email_row_key(old_address)) is None
    assert users.get_by_email(integration_id, new_address).id == renamed.id
    events = harness.events()
    assert sorted((e["type"], e["user_id"]) for e in events) == sorted(
        [("user.deactivated", leaver.id), ("user.deactivated", deleted.id)])
    assert all(e["integration_id"] == integration_id and e["at"].endswith("Z") and set(e) == {
        "type", "integration_id", "user_id", "at"} for e in events)
    assert UsersRepo(harness.store).pending_events(integration_id) == []
    assert harness.state(integration_id).delta_link != before
    assert users.summary(integration_id).active == 19 - 2 + 1

    control.user(tenant, leaver.id, "enable")
    control.user(tenant, deleted.id, "restore")
    harness.service.request_user_sync(integration_id, force=False)
    report = harness.run_one(integration_id)
    assert (report.counts.reactivated, report.counts.deactivated) == (2, 0)
    assert sorted(e["user_id"] for e in harness.events() if e["type"] == "user.reactivated") == sorted(
        [leaver.id, deleted.id])
    people = harness.people(integration_id)
    assert people[leaver.id].active and people[deleted.id].active
    assert people[deleted.id].deactivated_at is None

    # Nothing changed since: one Graph request, no writes.
    harness.store.stats.reset()
    harness.service.request_user_sync(integration_id, force=False)
    report = harness.run_one(integration_id)
    assert report.graph_requests == 1 and report.counts.created == report.counts.updated == 0
    assert harness.store.stats.transactions == 0


def test_the_guard_refuses_a_mass_deactivation_until_forced(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=10)
    integration_id = harness.connect(tenant)["id"]
    harness.run_one(integration_id)
    link = harness.state(integration_id).delta_link
    for person in tenant.users[:6]:
        harness.control.user(tenant, person.id, "soft-delete")
    newcomer = harness.control.add_user(tenant, alias="arrives-meanwhile")

    harness.service.request_user_sync(integration_id, force=False)
    report = harness.run_one(integration_id)

    assert report.outcome == GUARD_REFUSED and report.counts.deactivated == 6
    assert all(u.active for u in harness.people(integration_id).values())
    assert newcomer["id"] not in harness.people(integration_id)
    assert harness.state(integration_id).delta_link == link
    assert harness.events() == []
    status = harness.service.status(integration_id)
    guard = status["user_sync"]["guard"]
    assert guard["would_deactivate"] == 6 and guard["active_users"] == 10 and guard["max_share"] == 0.2
    assert "6 of 10" in guard["reason"] and "force" in guard["reason"]
    assert status["user_sync"]["last_run"]["outcome"] == GUARD_REFUSED
    assert any(w["code"] == "user_sync_guard" for w in status["warnings"])

    # The nightly run reads the same changes and refuses again.
    schedule_user_syncs(IntegrationsRepo(harness.store), SyncRequester(QueuePublisher(harness.queues,
                                                                                      harness.sync_queue)),
                        harness.clock)
    assert harness.run_one(integration_id).outcome == GUARD_REFUSED

    harness.service.request_user_sync(integration_id, force=True)
    report = harness.run_one(integration_id)

    assert report.outcome == APPLIED and report.counts.deactivated == 6 and report.counts.created == 1
    people = harness.people(integration_id)
    assert {i for i, u in people.items() if not u.active} == {p.id for p in tenant.users[:6]}
    assert len(harness.events()) == 6
    status = harness.service.status(integration_id)
    assert status["user_sync"]["guard"] is None and status["user_sync"]["last_run"]["forced"] is True
    assert status["users"] == {"active": 5, "total": 11}


def test_a_per_integration_share_overrides_the_default(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=10)
    integration_id = harness.connect(tenant, options={"max_deactivation_share": 0.7})["id"]
    harness.run_one(integration_id)
    for person in tenant.users[:6]:
        harness.control.user(tenant, person.id, "disable")
    harness.service.request_user_sync(integration_id, force=False)
    assert harness.run_one(integration_id).outcome == APPLIED


def test_an_expired_delta_link_means_a_full_read_that_deactivates_the_missing(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=8)
    integration_id = harness.connect(tenant)["id"]
    harness.run_one(integration_id)
    gone = tenant.users[3]
    harness.control.user(tenant, gone.id, "hard-delete")
    harness.control.patch_user(tenant, tenant.users[4].id, department="Moved")
    harness.control("POST", f"/tenants/{tenant.tenant_id}/delta/expire")
    old_link = harness.state(integration_id).delta_link

    harness.service.request_user_sync(integration_id, force=False)
    report = harness.run_one(integration_id)

    assert report.outcome == APPLIED and report.kind == FULL_AFTER_EXPIRY
    assert report.counts.deactivated == 1 and report.counts.updated == 1 and report.counts.unchanged == 6
    person = harness.people(integration_id)[gone.id]
    assert not person.active and person.deactivation_reason == "not_in_directory"
    assert [(e["type"], e["user_id"]) for e in harness.events()] == [("user.deactivated", gone.id)]
    assert harness.state(integration_id).last_run.kind == FULL_AFTER_EXPIRY
    new_link = harness.state(integration_id).delta_link
    assert new_link and new_link != old_link
    # The new link works: the next run is an ordinary delta round.
    harness.service.request_user_sync(integration_id, force=False)
    assert harness.run_one(integration_id).kind == DELTA


def test_secret_expiry_warnings_at_30_14_and_7_days(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=1)
    expires = (datetime.now(timezone.utc) + timedelta(days=40)).replace(microsecond=0)
    integration_id = harness.connect(tenant, client_secret_expires_at=expires.isoformat())["id"]
    seen = []
    for advance, expected in ((0, None), (11, 30), (16, 30), (27, 14), (34, 7), (39, 7)):
        harness.clock.offset = timedelta(days=advance)
        warnings = [w for w in harness.service.status(integration_id)["warnings"]
                    if w["code"] == "client_secret_expiring"]
        seen.append(warnings[0]["threshold_days"] if warnings else None)
        if expected:
            assert harness.service.get(integration_id)["warnings"][0]["threshold_days"] == expected
    assert seen == [None, 30, 30, 14, 7, 7]
    harness.clock.offset = timedelta(days=41)
    assert [w["code"] for w in harness.service.status(integration_id)["warnings"]] == ["client_secret_expired"]


def test_a_ciphertext_copied_to_another_integration_does_not_decrypt(harness, graph_emulator):
    first = harness.connect(new_tenant(graph_emulator, users=2))["id"]
    second = harness.connect(new_tenant(graph_emulator, users=2))["id"]
    table = harness.store.table("integrations")
    source, target = table.get("integrations", first), table.get("integrations", second)
    table.update({"PartitionKey": "integrations", "RowKey": second, "SealedSecret": source["SealedSecret"]},
                 etag_of(target))

    messages = {m["integration_id"]: m for m in harness.sync_messages() if m["integration_id"] in harness.mine}
    assert harness.sync.run(SyncRequest.from_message(messages[first])).outcome == APPLIED
    with pytest.raises(SecretUnreadable):
        harness.sync.run(SyncRequest.from_message(messages[second]))
    # A row altered in storage is the operator's alarm, not the customer's credentials.
    assert harness.integration(second).status == ACTIVE
    assert harness.service.status(second)["operator_alarm"] == "secret_unreadable"


@pytest.fixture
def own_harness(storage_connection_string, unique_name, tmp_path):
    """A harness on an emulator of its own: the test moves the emulator's clock."""
    with start_emulator(cert_dir=str(tmp_path / "tls")) as server:
        yield make_harness(server, storage_connection_string, unique_name)


def test_an_expired_secret_parks_only_its_integration_until_a_working_secret_is_saved(own_harness, caplog):
    harness = own_harness
    server = harness.server
    expiring, healthy = new_tenant(server, users=4), new_tenant(server, users=4)
    parked_id = harness.connect(expiring)["id"]
    healthy_id = harness.connect(healthy)["id"]
    assert {r.outcome for r in harness.run_requested()} == {APPLIED}

    key_id = harness.control("GET", f"/tenants/{expiring.tenant_id}")["apps"][0]["secrets"][0]["key_id"]
    harness.control("POST", f"/tenants/{expiring.tenant_id}/apps/{expiring.client_id}/secrets/{key_id}/expire")
    harness.control("POST", "/clock", {"advance_seconds": 2 * 3600})  # cached tokens expire too
    harness.control.add_user(healthy, alias="still-syncing")
    for integration_id in (parked_id, healthy_id):
        harness.service.request_user_sync(integration_id, force=False)

    reports = {r.integration_id: r for r in harness.run_requested()}

    assert reports[parked_id].outcome == RUN_PARKED
    assert reports[healthy_id].outcome == APPLIED and reports[healthy_id].counts.created == 1
    parked = harness.integration(parked_id)
    assert parked.status == CREDENTIALS_INVALID
    assert "AADSTS7000222" in parked.status_reason and "new client secret" in parked.status_reason
    status = harness.service.status(parked_id)
    assert status["status"] == CREDENTIALS_INVALID and status["user_sync"]["last_run"]["outcome"] == RUN_PARKED
    assert "AADSTS7000222" in status["user_sync"]["last_error"]
    assert harness.integration(healthy_id).status == ACTIVE

    # Parked: admins get a clear refusal, the nightly job and queued work skip it with one line.
    with pytest.raises(Problem) as refused:
        harness.service.request_user_sync(parked_id, force=False)
    assert refused.value.status == 409 and refused.value.code == CREDENTIALS_INVALID
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report = schedule_user_syncs(IntegrationsRepo(harness.store),
                                     SyncRequester(QueuePublisher(harness.queues, harness.sync_queue)), harness.clock)
        assert report.skipped.get(parked_id) == CREDENTIALS_INVALID and healthy_id in report.requested
        stale = harness.sync.run(SyncRequest(parked_id, "queued-before-parking", "manual"))
    assert stale.outcome == SKIPPED_INACTIVE
    about_parked = [r for r in caplog.records if parked_id in r.getMessage() and r.name.startswith("sync.")]
    assert len(about_parked) == 2  # one from the schedule, one from the stale message
    assert {r.outcome for r in harness.run_requested()} == {APPLIED}

    # A wrong secret changes nothing; a working one resumes the integration and its sync.
    with pytest.raises(Problem) as wrong:
        harness.service.update(parked_id, {"client_secret": "wro8Q~not-the-secret-at-all-0000000000000"})
    assert wrong.value.status == 400 and wrong.value.code == "invalid_client_secret"
    assert harness.integration(parked_id).status == CREDENTIALS_INVALID
    fresh = harness.control("POST", f"/tenants/{expiring.tenant_id}/apps/{expiring.client_id}/secrets", {})
    harness.control.add_user(expiring, alias="joined-while-parked")
    resumed = harness.service.update(parked_id, {"client_secret": fresh["value"]})
    assert resumed["status"] == ACTIVE and resumed["resumed_user_sync"]["queued"]
    report = harness.run_one(parked_id)
    assert report.outcome == APPLIED and report.counts.created == 1
    assert harness.service.status(parked_id)["status_reason"] is None


def test_deleting_an_integration_unsubscribes_its_assets_then_removes_everything(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=3)
    integration_id = harness.connect(tenant)["id"]
    harness.run_one(integration_id)
    assert len(harness.people(integration_id)) == 3

    harness.service.delete(integration_id)

    assert harness.unsubscribed == [integration_id]
    assert harness.integration(integration_id) is None
    assert harness.people(integration_id) == {}
    assert list(harness.store.table("users").query(partition=integration_id)) == []
    assert harness.state(integration_id).etag is None
    with pytest.raises(Problem) as gone:
        harness.service.get(integration_id)
    assert gone.value.status == 404


def test_a_queued_request_for_a_deleted_integration_is_harmless(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=1)
    integration_id = harness.connect(tenant)["id"]
    harness.service.delete(integration_id)
    (report,) = harness.run_requested()
    assert report.outcome == "unknown_integration" and report.table_transactions == 0
    assert harness.people(integration_id) == {}


def test_the_people_of_a_large_deleted_integration_are_removed_by_the_worker(harness, graph_emulator, monkeypatch):
    from sync import integrations

    monkeypatch.setattr(integrations, "INLINE_PURGE_LIMIT", 2)
    tenant = new_tenant(graph_emulator, users=3)
    integration_id = harness.connect(tenant)["id"]
    harness.run_one(integration_id)

    answer = harness.service.delete(integration_id)

    assert answer["people_removal"] == "queued" and harness.integration(integration_id) is None
    assert len(harness.people(integration_id)) == 3
    (request,) = harness.sync_messages()
    assert request["trigger"] == "cleanup"
    report = harness.sync.run(SyncRequest.from_message(request))
    assert report.outcome == "unknown_integration" and report.table_transactions == 1
    assert list(harness.store.table("users").query(partition=integration_id)) == []


def test_a_run_never_overlaps_another_of_the_same_integration(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=2)
    integration_id = harness.connect(tenant)["id"]
    repo = SyncStateRepo(harness.store)
    assert repo.acquire(integration_id, "someone-else", harness.clock(), timedelta(minutes=15)) is not None
    (report,) = harness.run_requested()
    assert report.outcome == "skipped_busy" and harness.people(integration_id) == {}
    # A lease that ran out (its run crashed) does not block forever.
    harness.clock.advance(minutes=16)
    harness.service.request_user_sync(integration_id, force=False)
    assert harness.run_one(integration_id).outcome == APPLIED


def test_events_left_by_a_crashed_run_are_delivered_by_the_next(harness, graph_emulator):
    tenant = new_tenant(graph_emulator, users=3)
    integration_id = harness.connect(tenant)["id"]
    harness.run_one(integration_id)
    harness.control.user(tenant, tenant.users[0].id, "disable")

    class QueueDown:
        def publish(self, event):
            raise ConnectionError("queue unavailable")

    working = harness.sync.events
    harness.sync.events = QueueDown()
    harness.service.request_user_sync(integration_id, force=False)
    with pytest.raises(ConnectionError):
        harness.run_one(integration_id)
    assert not harness.people(integration_id)[tenant.users[0].id].active  # the change committed
    assert len(UsersRepo(harness.store).pending_events(integration_id)) == 1
    assert harness.state(integration_id).last_run.outcome == "failed"

    harness.sync.events = working
    harness.service.request_user_sync(integration_id, force=False)
    report = harness.run_one(integration_id)
    assert report.outcome == APPLIED and report.events_published == 1
    assert [(e["type"], e["user_id"]) for e in harness.events()] == [("user.deactivated", tenant.users[0].id)]
    assert UsersRepo(harness.store).pending_events(integration_id) == []


def test_throttling_puts_the_request_back_with_graphs_delay_instead_of_failing(
        graph_emulator, storage_connection_string, unique_name):
    """Graph's Retry-After outlasting the client's retry budget must not spend the message's
    dequeue count: the run is deferred (same run id, counted), then completes."""
    harness = make_harness(graph_emulator, storage_connection_string, unique_name, max_retry_wait=0)
    tenant = demo_like_tenant(graph_emulator, people=5)
    created = harness.connect(tenant)
    harness.sync_messages()  # the initial request is run by hand below
    fault = harness.control("POST", "/faults", {"method": "GET", "path": r"/v1\.0/users/delta", "status": 429,
                                                 "retry_after": 1, "count": 1, "tenant": tenant.tenant_id})
    first = harness.sync.run(SyncRequest(created["id"], "run-1", "manual"))
    assert first.outcome == "deferred" and "1 s" in first.message
    assert harness.control("GET", f"/faults/{fault['id']}")["hits"] == 1

    messages = wait_for(harness.sync_messages, timeout=15, interval=0.2)  # visible after the delay
    assert messages == [{"integration_id": created["id"], "run_id": "run-1", "trigger": "manual",
                         "force": False, "deferrals": 1}]
    second = harness.sync.run(SyncRequest.from_message(messages[0]))
    assert second.outcome == "applied" and second.counts.created == len(harness.people(created["id"]))


def test_a_forced_request_that_finds_a_run_in_progress_is_kept_for_later(harness, graph_emulator):
    tenant = demo_like_tenant(graph_emulator, people=3)
    created = harness.connect(tenant)
    harness.sync_messages()
    assert SyncStateRepo(harness.store).acquire(created["id"], "someone-else", harness.clock(), timedelta(minutes=15))
    busy = harness.sync.run(SyncRequest(created["id"], "forced-1", "manual", force=True))
    assert busy.outcome == "deferred"
    unforced = harness.sync.run(SyncRequest(created["id"], "plain-1", "manual"))
    assert unforced.outcome == "skipped_busy"
    client = harness.queues.get_queue_client(harness.sync_queue)
    assert client.get_queue_properties().approximate_message_count == 1  # only the forced one, still hidden
