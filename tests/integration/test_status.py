"""GET /api/status against Azurite and the Graph emulator: a connected tenant with its last user
sync, an asset whose subscription failed, a dead letter, queue backlogs read from the service, and
a fresh storage account where nothing exists yet."""
from __future__ import annotations

import base64
import importlib
import json
import sys
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from functions import context
from sync.booking_model import Asset, Subscription
from sync.monitoring import DEADLETTERS, StatusReader, monitored_queues
from sync.settings import SETTING_NAMES
from sync.store import Store
from sync.store.assets_repo import AssetsRepo, new_asset_id
from sync.store.deadletters_repo import DeadLettersRepo
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo
from sync.resync import CalendarStateRepo
from sync.store.keys import compose
from tests.support.emulator_fixture import new_tenant

ENCRYPTION_KEY = base64.b64encode(b"status-endpoint-test-key-32bytes").decode()


@pytest.fixture
def app(monkeypatch, graph_emulator, storage_connection_string):
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:7071")
    monkeypatch.setenv("SECRET_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.setenv("GRAPH_AUTHORITY_HOST", graph_emulator.authority_host)
    monkeypatch.setenv("GRAPH_API_BASE", graph_emulator.api_base)
    monkeypatch.setenv("GRAPH_CA_BUNDLE", graph_emulator.ca_path)
    context.reset()
    module = sys.modules.get("function_app")
    module = importlib.reload(module) if module else importlib.import_module("function_app")
    yield {f.get_function_name(): f for f in module.app.get_functions()}
    context.reset()


def call(app, name: str, method: str, path: str, body=None, headers=None, route=None) -> func.HttpResponse:
    request = func.HttpRequest(method=method, url=f"http://127.0.0.1:7071/api/{path}",
                               body=json.dumps(body).encode() if body is not None else b"",
                               headers={"Content-Type": "application/json", **(headers or {})}, params={},
                               route_params=route or {})
    return app[name].get_user_function()(request)


def failed_asset(integration_id: str) -> Asset:
    now = datetime.now(timezone.utc)
    return Asset(id=new_asset_id(), integration_id=integration_id, name="Room 4.12", category="room",
                 mailbox=f"room-{uuid.uuid4().hex[:8]}@example.com", time_zone="Europe/Amsterdam", capacity=8,
                 max_duration_minutes=None,
                 subscription=Subscription(state="error", last_error="Graph refused the subscription (403)",
                                           last_error_at=now - timedelta(minutes=3)),
                 created_at=now, updated_at=now)


def test_status_reports_integrations_assets_and_dead_letters(app, graph_emulator, storage_connection_string):
    tenant = new_tenant(graph_emulator, users=3)
    created = call(app, "integrations_create", "POST", "integrations", {
        "domains": [tenant.domain], "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
        "client_secret": tenant.client_secret})
    assert created.status_code == 201, created.get_body()
    integration = json.loads(created.get_body())
    app["user_sync_worker"].get_user_function()(func.QueueMessage(id="m1", body=json.dumps({
        "integration_id": integration["id"], "run_id": integration["initial_user_sync"]["run_id"],
        "trigger": "initial"}).encode()))
    store = Store(TableServiceClient.from_connection_string(storage_connection_string))
    asset = AssetsRepo(store).insert(failed_asset(integration["id"]))
    # Kept as the poison keeper keeps one (other tests list every dead letter, so the row is whole).
    DeadLettersRepo(store).keep("graph-notifications", uuid.uuid4().hex,
                                json.dumps({"items": [{"integration_id": integration["id"]}]}), "test",
                                datetime.now(timezone.utc), 5)

    response = call(app, "status", "GET", "status", headers={"x-correlation-id": "status-test-1"})

    assert response.status_code == 200 and response.mimetype == "application/json"
    report = json.loads(response.get_body())
    assert report["status"] == "attention"
    (mine,) = [i for i in report["integrations"] if i["id"] == integration["id"]]
    assert mine["state"] == "active" and mine["users"] == {"active": 3, "total": 3}
    assert mine["user_sync"]["last_outcome"] == "applied" and mine["user_sync"]["last_success_at"]
    assert mine["user_sync"]["failing"] is False
    assert mine["assets"] == [{"id": asset.id, "name": "Room 4.12", "mailbox": asset.mailbox, "state": "error",
                               "expires_at": None, "last_notification_at": None, "last_resync_at": None,
                               "last_success_at": None, "last_error": "Graph refused the subscription (403)",
                               "last_error_at": mine["assets"][0]["last_error_at"]}]
    assert mine["dead_letters"] == 1
    codes = {(p["code"], p.get("integration_id"), p.get("asset_id")) for p in report["problems"]}
    assert ("subscription_error", integration["id"], asset.id) in codes
    assert ("dead_letters", None, None) in codes
    assert [q["name"] for q in report["queues"]] == [name for name, _ in monitored_queues()]
    assert {"user-sync", "user-sync-poison", "graph-notifications-poison", "user-events"} <= {q["name"] for q in report["queues"]}
    assert report["dead_letters"]["by_partition"][integration["id"]] == 1
    assert tenant.client_secret not in response.get_body().decode()


def test_an_asset_s_last_success_is_its_later_notification_or_resync(app, graph_emulator, storage_connection_string):
    tenant = new_tenant(graph_emulator, users=1)
    created = call(app, "integrations_create", "POST", "integrations", {
        "domains": [tenant.domain], "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
        "client_secret": tenant.client_secret})
    assert created.status_code == 201, created.get_body()
    integration_id = json.loads(created.get_body())["id"]
    store = Store(TableServiceClient.from_connection_string(storage_connection_string))
    notified, resynced = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc), datetime(2026, 3, 2, 10, 30, tzinfo=timezone.utc)
    def asset(name: str, subscription: Subscription) -> Asset:
        return AssetsRepo(store).insert(replace(failed_asset(integration_id), name=name, subscription=subscription))

    asset("A notified", Subscription(state="subscribed", last_notification_at=notified))
    both = asset("B resynced", Subscription(state="subscribed", last_notification_at=notified))
    asset("C quiet", Subscription(state="subscribed"))
    calendars = CalendarStateRepo(store)
    calendars.save(integration_id, both.id, "https://graph.example/delta", resynced, {"changes": 0})
    calendars.table.upsert({"PartitionKey": integration_id, "RowKey": compose("calendar", both.id),
                            "LastRunAt": resynced})  # the resync ran at a known time

    report = json.loads(call(app, "status", "GET", "status").get_body())

    (mine,) = [i for i in report["integrations"] if i["id"] == integration_id]
    seen = {a["name"]: (a["last_notification_at"], a["last_resync_at"], a["last_success_at"]) for a in mine["assets"]}
    assert seen["A notified"] == ("2026-03-02T09:00:00Z", None, "2026-03-02T09:00:00Z")
    assert seen["B resynced"] == ("2026-03-02T09:00:00Z", "2026-03-02T10:30:00Z", "2026-03-02T10:30:00Z")
    assert seen["C quiet"] == (None, None, None)


def test_status_needs_the_function_key(app):
    trigger = json.loads(app["status"].get_function_json())["bindings"][0]
    assert (trigger["route"], trigger["methods"], trigger.get("authLevel", "FUNCTION")) == ("status", ["GET"], "FUNCTION")


def test_queue_backlogs_are_the_service_counts_poison_included(storage_connection_string):
    name = f"work{uuid.uuid4().hex[:10]}"
    queues = QueueServiceClient.from_connection_string(storage_connection_string)
    # A message the dead-letter keeper could not take either (not base64) waits in -poison-poison.
    for queue_name, count in ((name, 2), (f"{name}-poison", 3), (f"{name}-poison-poison", 1)):
        client = queues.get_queue_client(queue_name)
        client.create_queue()
        for n in range(count):
            client.send_message(f"message {n}")
    store = Store(TableServiceClient.from_connection_string(storage_connection_string))
    reader = StatusReader(integrations=IntegrationsRepo(store), syncstate=SyncStateRepo(store), users=UsersRepo(store),
                          table_service=store.service, queue_service=queues,
                          queues=monitored_queues([name], [f"gone{uuid.uuid4().hex[:8]}"]))

    report = reader.report()

    assert [(q["name"], q["role"], q["exists"], q["approximate_messages"]) for q in report["queues"]] == [
        (name, "work", True, 2), (f"{name}-poison", "poison", True, 3), (f"{name}-poison-poison", "poison", True, 1),
        (report["queues"][3]["name"], "published", False, 0)]
    assert {"code": "poison_messages", "queue": f"{name}-poison",
            "message": "3 message(s) failed every retry"} in report["problems"]
    assert {"code": "poison_messages", "queue": f"{name}-poison-poison",
            "message": "1 message(s) failed every retry"} in report["problems"]


def test_a_fresh_account_is_ok_and_reading_it_creates_no_asset_or_dead_letter_table():
    with Azurite() as fresh:
        tables = TableServiceClient.from_connection_string(fresh.connection_string)
        store = Store(tables)
        reader = StatusReader(integrations=IntegrationsRepo(store), syncstate=SyncStateRepo(store),
                              users=UsersRepo(store), table_service=tables,
                              queue_service=QueueServiceClient.from_connection_string(fresh.connection_string))
        report = reader.report()
        existing = {t.name for t in tables.list_tables()}
    assert report["status"] == "ok" and report["problems"] == [] and report["integrations"] == []
    assert all(q["exists"] is False and q["approximate_messages"] == 0 for q in report["queues"])
    assert report["dead_letters"] == {"total": 0, "by_partition": {}}
    assert not existing & {"assets", DEADLETTERS}


def test_every_queue_the_app_consumes_is_monitored_with_its_poison_queue(app):
    from sync.monitoring import CONSUMED_QUEUES

    triggered = {binding["queueName"] for function in app.values()
                 for binding in json.loads(function.get_function_json())["bindings"]
                 if binding["type"] == "queueTrigger"}
    names = {name for name, _ in monitored_queues()}
    assert triggered and triggered <= names  # a poison queue may have a trigger of its own (to dead letters)
    assert {name for name in triggered if not name.endswith("-poison")} <= set(CONSUMED_QUEUES)
    assert {f"{name}-poison" for name in CONSUMED_QUEUES} <= names


def test_storage_that_refuses_the_app_answers_503_naming_the_cause(monkeypatch, app, storage_connection_string):
    wrong_key = base64.b64encode(b"not the account key of azurite!!" * 2).decode()
    refused = ";".join(f"AccountKey={wrong_key}" if part.startswith("AccountKey=") else part
                       for part in storage_connection_string.split(";"))
    monkeypatch.setenv("AzureWebJobsStorage", refused)
    context.reset()

    response = call(app, "status", "GET", "status")

    assert response.status_code == 503
    body = json.loads(response.get_body())
    assert body["status"] == "unavailable" and body["detail"] == "credentials were refused"
    assert wrong_key not in response.get_body().decode()
