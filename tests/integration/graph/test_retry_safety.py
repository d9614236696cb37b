"""Retry safety against the emulator's injected faults: a request that may have been applied is
sent again only when that is harmless; otherwise the caller gets OutcomeUnknown and looks it up."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from graph import events, subscriptions
from graph.batch import BatchRequest, run_batch
from graph.errors import OutcomeUnknown
from tests.integration.graph.support import graph_env  # noqa: F401  (module fixture)
from tests.support.polling import wait_for

DAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=5)


@pytest.fixture
def tenant(graph_env):
    graph_env.control.clear_faults()
    return graph_env.tenant(users=2, rooms=1)


def _meeting(subject: str) -> dict:
    start, end = DAY + timedelta(hours=9), DAY + timedelta(hours=10)
    return {"subject": subject,
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}}


def _events_path(mailbox: str) -> str:
    return rf"/v1\.0/users/{mailbox}/events$"


def _subjects(client, mailbox: str) -> list[str]:
    return [e["subject"] for e in client.items(f"/users/{mailbox}/events")]


def test_a_503_on_an_unsafe_post_is_outcome_unknown_after_exactly_one_attempt(graph_env, tenant):
    organizer = tenant.users[0].mail
    rule = graph_env.control.add_fault(method="POST", path=_events_path(organizer), status=503, count=1)
    counts = graph_env.server.world.request_counts
    before = counts["events.create"]
    client = graph_env.client(tenant)
    with pytest.raises(OutcomeUnknown) as caught:
        client.post(f"/users/{organizer}/events", _meeting("no transaction id"), mailbox=organizer)
    assert graph_env.control.fault(rule["id"])["hits"] == 1
    assert counts["events.create"] - before == 1
    assert (caught.value.method, caught.value.status) == ("POST", 503)
    assert caught.value.path == f"/v1.0/users/{organizer}/events"


def test_create_event_with_a_transaction_id_is_resent_after_a_503(graph_env, tenant):
    organizer = tenant.users[0].mail
    rule = graph_env.control.add_fault(method="POST", path=_events_path(organizer), status=503, count=1)
    counts = graph_env.server.world.request_counts
    before = counts["events.create"]
    client = graph_env.client(tenant)
    created = events.create_event(client, organizer, _meeting("with transaction id"),
                                  transaction_id=str(uuid.uuid4()))
    assert graph_env.control.fault(rule["id"])["hits"] == 1
    assert counts["events.create"] - before == 2
    assert _subjects(client, organizer) == ["with transaction id"] and created["id"]


def test_an_unanswered_unsafe_post_that_was_applied_is_left_for_a_look_up(graph_env, tenant):
    """The emulator creates the event but answers after the client's read timeout: the client
    must not send a second copy, and the look-up finds exactly one."""
    organizer = tenant.users[0].mail
    rule = graph_env.control.add_fault(method="POST", path=_events_path(organizer), delay_ms=1500, count=1)
    client = graph_env.client(tenant, timeout=(5.0, 0.3))
    with pytest.raises(OutcomeUnknown) as caught:
        client.post(f"/users/{organizer}/events", _meeting("slow answer"), mailbox=organizer)
    assert "ReadTimeout" in caught.value.cause
    looked_up = graph_env.client(tenant)
    # The emulator finishes the request after its delay; then exactly one copy exists.
    assert wait_for(lambda: _subjects(looked_up, organizer), what="the slow event") == ["slow answer"]
    assert graph_env.control.fault(rule["id"])["hits"] == 1


def test_a_subscription_create_is_not_resent_after_a_dropped_connection(graph_env, tenant):
    rule = graph_env.control.add_fault(method="POST", path=r"/v1\.0/subscriptions$", drop_connection=True, count=1)
    client = graph_env.client(tenant)
    with pytest.raises(OutcomeUnknown):
        subscriptions.create_subscription(client, resource=f"users/{tenant.rooms[0].email}/events",
                                          change_type="created", notification_url="https://127.0.0.1:1/notify",
                                          client_state="state")
    assert graph_env.control.fault(rule["id"])["hits"] == 1


def test_an_event_patch_is_resent_only_with_if_match(graph_env, tenant):
    organizer = tenant.users[0].mail
    client = graph_env.client(tenant)
    created = events.create_event(client, organizer, _meeting("before"), transaction_id=str(uuid.uuid4()))
    path = rf"/v1\.0/users/{organizer}/events/.+"
    rule = graph_env.control.add_fault(method="PATCH", path=path, status=504, count=1)
    with pytest.raises(OutcomeUnknown):
        events.update_event(client, organizer, created["id"], {"subject": "after"})
    assert graph_env.control.fault(rule["id"])["hits"] == 1

    rule = graph_env.control.add_fault(method="PATCH", path=path, status=504, count=1)
    updated = events.update_event(client, organizer, created["id"], {"subject": "after"},
                                  if_match=created.get("@odata.etag") or "*")
    assert updated["subject"] == "after" and graph_env.control.fault(rule["id"])["hits"] == 1


def test_a_batch_holding_an_unsafe_item_is_not_resent_but_one_of_safe_items_is(graph_env, tenant):
    organizer, other = tenant.users[0].mail, tenant.users[1].mail
    counts = graph_env.server.world.request_counts
    client = graph_env.client(tenant)

    rule = graph_env.control.add_fault(method="POST", path=r"/v1\.0/\$batch$", status=503, count=1)
    before = counts["batch"]
    safe = run_batch(client, [BatchRequest("GET", f"/users/{organizer}"), BatchRequest("GET", f"/users/{other}")])
    assert all(r.ok for r in safe)
    assert counts["batch"] - before == 2 and graph_env.control.fault(rule["id"])["hits"] == 1

    rule = graph_env.control.add_fault(method="POST", path=r"/v1\.0/\$batch$", status=503, count=1)
    before, creates = counts["batch"], counts["events.create"]
    mixed = run_batch(client, [
        BatchRequest("GET", f"/users/{organizer}"),
        BatchRequest("POST", f"/users/{organizer}/events", body=_meeting("in a batch")),
    ])
    assert graph_env.control.fault(rule["id"])["hits"] == 1
    assert isinstance(mixed[1].error, OutcomeUnknown) and counts["events.create"] == creates
    assert mixed[0].ok  # the safe item went again on its own
    assert counts["batch"] - before == 2


def test_a_batch_item_answered_503_is_resent_only_when_safe(graph_env, tenant):
    organizer = tenant.users[0].mail
    graph_env.control.add_fault(method="POST", path=_events_path(organizer), status=503, count=2)
    counts = graph_env.server.world.request_counts
    before = counts["events.create"]
    client = graph_env.client(tenant)
    results = run_batch(client, [
        BatchRequest("POST", f"/users/{organizer}/events", body=_meeting("plain"), id="plain"),
        BatchRequest("POST", f"/users/{organizer}/events",
                     body={**_meeting("deduplicated"), "transactionId": str(uuid.uuid4())}, retry_safe=True,
                     id="dedup"),
    ])
    assert isinstance(results[0].error, OutcomeUnknown) and results[0].error.status == 503
    assert results[1].ok
    assert counts["events.create"] - before == 3  # plain once, deduplicated twice
    assert _subjects(client, organizer) == ["deduplicated"]
