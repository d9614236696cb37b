"""Queue workers and webhooks bind what they work on to the log context: every record an
invocation logs carries the integration, asset and reservation its message names, and a
correlation id (the one the message carries, else the queue message's id); each webhook post
gets one correlation id of its own, carried on into the messages it queues.

The workers are the app's own functions, invoked with real queue messages against Azurite and
the Graph emulator (for ids nobody knows, so each test owns what it reads)."""
from __future__ import annotations

import json
import logging
import uuid

import azure.functions as func
import pytest

from sync import logcontext
from tests.integration.test_status import app, call  # noqa: F401 -- the app fixture and its caller


@pytest.fixture
def records(app, caplog):  # noqa: F811 -- app is the imported fixture
    logcontext.install()  # what the app's settings loader does on start-up
    caplog.set_level(logging.INFO)
    return caplog


def invoke(app, name: str, body: dict, message_id: str | None = None) -> str:  # noqa: F811
    message_id = message_id or uuid.uuid4().hex
    app[name].get_user_function()(func.QueueMessage(id=message_id, body=json.dumps(body).encode()))
    return message_id


def ours(caplog, name: str) -> list[logging.LogRecord]:
    """The records the named function's module logged (plus anything they called)."""
    found = [r for r in caplog.records if r.name.startswith("functions") or r.name.startswith("sync")]
    assert found, f"{name} logged nothing"
    return found


def ids(record: logging.LogRecord) -> dict[str, str]:
    return logcontext.context_of(record)


def test_a_booking_change_logs_under_its_integration_asset_reservation_and_message(app, records):  # noqa: F811
    integration_id, asset_id = str(uuid.uuid4()), uuid.uuid4().hex
    reservation_id = asset_id + uuid.uuid4().hex
    message_id = invoke(app, "booking_changes_worker", {"integration_id": integration_id, "asset_id": asset_id,
                                                        "reservation_id": reservation_id})
    for record in ours(records, "booking_changes_worker"):
        assert ids(record) == {"integration_id": integration_id, "asset_id": asset_id,
                               "reservation_id": reservation_id, "correlation_id": message_id}, record.getMessage()


def test_a_calendar_resync_carries_the_correlation_id_its_message_brought(app, records):  # noqa: F811
    integration_id, asset_id = str(uuid.uuid4()), uuid.uuid4().hex
    invoke(app, "calendar_resync_worker", {"integration_id": integration_id, "asset_id": asset_id,
                                           "reason": "requested", "correlation_id": "admin-resync-42"})
    for record in ours(records, "calendar_resync_worker"):
        assert ids(record) == {"integration_id": integration_id, "asset_id": asset_id,
                               "correlation_id": "admin-resync-42"}, record.getMessage()


def test_change_notifications_log_each_item_under_its_asset(app, records):  # noqa: F811
    integration_id, assets = str(uuid.uuid4()), [uuid.uuid4().hex, uuid.uuid4().hex]
    invoke(app, "room_change_worker", {"correlation_id": "graph-post-7", "deferrals": 0, "items": [
        {"integration_id": integration_id, "asset_id": asset, "event_id": f"AAMk{n}="} for n, asset in
        enumerate(assets)]})
    logged = ours(records, "room_change_worker")
    assert {record.correlation_id for record in logged} == {"graph-post-7"}
    assert {record.asset_id for record in logged if hasattr(record, "asset_id")} == set(assets)
    assert all(record.integration_id == integration_id for record in logged if hasattr(record, "asset_id"))


def test_the_purge_and_a_refused_message_log_under_the_message(app, records):  # noqa: F811
    integration_id = str(uuid.uuid4())
    purge_message = invoke(app, "integration_purge_worker", {"integration_id": integration_id})
    (done,) = [r for r in records.records if "purge of integration" in r.getMessage()]
    assert ids(done) == {"integration_id": integration_id, "correlation_id": purge_message}

    records.clear()
    with pytest.raises(ValueError):
        invoke(app, "integration_purge_worker", {"integration": "misspelt"}, message_id="poisoned-1")
    (refused,) = [r for r in records.records if "refused" in r.getMessage()]
    assert ids(refused) == {"correlation_id": "poisoned-1"}


def test_each_webhook_post_logs_under_one_correlation_id_of_its_own(app, records):  # noqa: F811
    def post(headers: dict) -> list[logging.LogRecord]:
        records.clear()
        body = {"value": [{"subscriptionId": str(uuid.uuid4()), "clientState": "x", "changeType": "created",
                           "resource": "Users/a/Events/b", "tenantId": str(uuid.uuid4()),
                           "resourceData": {"id": "b"}}]}
        answer = call(app, "graph_notifications", "POST", "microsoft_graph/notifications/notification_url", body,
                      headers=headers)
        assert answer.status_code == 202
        return [r for r in records.records if "rejected" in r.getMessage()]

    (first,) = post({"x-correlation-id": "graph-post-1"})
    assert first.correlation_id == "graph-post-1"
    (second,), (third,) = post({}), post({})
    assert len(second.correlation_id) == 32 and second.correlation_id != third.correlation_id
