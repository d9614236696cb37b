"""The REST API and the user-sync worker as the Functions host calls them: the registered user
functions of `function_app`, real azure.functions request and queue-message objects, Azurite
and the Graph emulator over HTTPS."""
from __future__ import annotations

import base64
import importlib
import json
import logging
import sys
import threading
import uuid
from datetime import timedelta

import azure.functions as func
import pytest
import requests
from azure.core.exceptions import ResourceExistsError

from functions import context
from graph.auth import forget_shared_apps
from sync.settings import SETTING_NAMES
from sync.events_out import QueuePublisher
from sync.model import utc_now
from sync.purge import PURGE_QUEUE, IntegrationPurge, PurgeRequester
from sync.store import StorageLocation, Store, queue_service
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.syncstate_repo import SyncStateRepo
from sync.users import USER_SYNC_QUEUE
from tests.integration.test_user_sync import purge_steps
from tests.support.emulator_fixture import new_tenant

ENCRYPTION_KEY = base64.b64encode(b"integration-api-test-key-32bytes").decode()


@pytest.fixture
def app(monkeypatch, graph_emulator, storage_connection_string):
    """The function app configured for Azurite and the shared Graph emulator."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:7071")
    monkeypatch.setenv("SECRET_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.setenv("GRAPH_AUTHORITY_HOST", graph_emulator.authority_host)
    monkeypatch.setenv("GRAPH_API_BASE", graph_emulator.api_base)
    monkeypatch.setenv("GRAPH_CA_BUNDLE", graph_emulator.ca_path)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    context.reset()
    module = sys.modules.get("function_app")
    module = importlib.reload(module) if module else importlib.import_module("function_app")
    yield {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}
    context.reset()


@pytest.fixture
def sync_queue(storage_connection_string):
    """The app's user-sync queue, there and empty whatever ran before (every test module shares
    it, and a test that expects nothing queued must not depend on another having created it)."""
    client = queue_service(StorageLocation(connection_string=storage_connection_string)).get_queue_client(USER_SYNC_QUEUE)  # raw: the test checks the base64 itself
    try:
        client.create_queue()
    except ResourceExistsError:
        client.clear_messages()
    return client


def call(app, name: str, method: str, path: str, body=None, params=None, route=None) -> tuple[int, dict | None, func.HttpResponse]:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    request = func.HttpRequest(method=method, url=f"http://127.0.0.1:7071/api/{path}", body=raw,
                               headers={"Content-Type": "application/json"}, params=params or {},
                               route_params=route or {})
    response = app[name](request)
    text = response.get_body()
    return response.status_code, (json.loads(text) if text else None), response


def create(app, tenant, **changes):
    body = {"domains": [tenant.domain], "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
            "client_secret": tenant.client_secret, **changes}
    return call(app, "integrations_create", "POST", "integrations", {k: v for k, v in body.items() if v is not None})


def take_requests(queue) -> list[dict]:
    found = []
    for message in queue.receive_messages(messages_per_page=32, visibility_timeout=60):
        found.append(json.loads(base64.b64decode(message.content, validate=True)))
        queue.delete_message(message)
    return found


def run_worker(app, message: dict) -> None:
    app["user_sync_worker"](func.QueueMessage(id=str(uuid.uuid4()), body=json.dumps(message).encode()))


def all_users(app, **params) -> list[dict]:
    people, continuation = [], None
    while True:
        query = {**params, **({"continuation": continuation} if continuation else {})}
        status, body, _ = call(app, "users_list", "GET", "users", params=query)
        assert status == 200, body
        people.extend(body["value"])
        continuation = body["continuation"]
        if not continuation:
            return people


def integration_ids(app) -> set[str]:
    status, body, _ = call(app, "integrations_list", "GET", "integrations")
    assert status == 200
    return {i["id"] for i in body["value"]}


def test_connect_sync_and_read_people_through_the_api(app, sync_queue, graph_emulator):
    tenant = new_tenant(graph_emulator, users=5)
    status, created, response = create(app, tenant, client_secret_expires_at="2099-01-01")
    assert status == 201, created
    assert response.headers["Location"] == f"/api/integrations/{created['id']}"
    assert created["mode"] == "users_and_calendars" and created["status"] == "active"
    assert created["granted_permissions"] == ["Calendars.ReadWrite", "Place.Read.All", "User.Read.All"]
    assert created["client_secret_expires_at"] == "2099-01-01T00:00:00Z"
    assert "client_secret" not in created and "sealed_secret" not in json.dumps(created)
    (request,) = take_requests(sync_queue)
    assert request == {"integration_id": created["id"], "run_id": created["initial_user_sync"]["run_id"],
                       "trigger": "initial", "force": False}

    run_worker(app, request)

    people = all_users(app, integration_id=created["id"], page_size="2")
    assert sorted(p["email"] for p in people) == sorted(u.mail.lower() for u in tenant.users)
    assert all(p["active"] and p["integration_id"] == created["id"] for p in people)
    status, body, _ = call(app, "integrations_status", "GET", "x", route={"integration_id": created["id"]})
    assert status == 200
    assert body["user_sync"]["last_run"]["run_id"] == request["run_id"]
    assert body["user_sync"]["last_run"]["counts"]["created"] == 5 and body["users"] == {"active": 5, "total": 5}
    assert body["warnings"] == [] and body["user_sync"]["guard"] is None
    status, one, _ = call(app, "integrations_get", "GET", "x", route={"integration_id": created["id"]})
    assert status == 200 and one["id"] == created["id"] and "initial_user_sync" not in one
    assert created["id"] in integration_ids(app)

    # Filtering by activity, and asking for another sync.
    new_tenant_user = tenant.users[0]
    requests.post(f"{graph_emulator.base_url}/_control/tenants/{tenant.tenant_id}/users/{new_tenant_user.id}/disable",
                  verify=graph_emulator.ca_path, timeout=30).raise_for_status()
    status, accepted, response = call(app, "integrations_sync_users", "POST", "x", params={"force": "true"},
                                      route={"integration_id": created["id"]})
    assert status == 202 and accepted["force"] is True and accepted["run_id"]
    assert response.headers["Location"] == f"/api/integrations/{created['id']}/status"
    (request,) = take_requests(sync_queue)
    assert request["run_id"] == accepted["run_id"] and request["force"] is True and request["trigger"] == "manual"
    run_worker(app, request)
    inactive = all_users(app, integration_id=created["id"], active="false")
    assert [p["id"] for p in inactive] == [new_tenant_user.id]
    assert inactive[0]["deactivation_reason"] == "disabled" and inactive[0]["deactivated_at"]
    assert len(all_users(app, integration_id=created["id"], active="true")) == 4


@pytest.mark.parametrize("case, expected_code, field", [
    ("wrong secret", "invalid_client_secret", "client_secret"),
    ("unknown tenant", "unknown_tenant", "tenant_id"),
    ("unknown app", "unknown_application", "client_id"),
])
def test_credentials_entra_refuses_are_a_clear_400_and_nothing_is_stored(app, sync_queue, graph_emulator, case,
                                                                        expected_code, field):
    tenant = new_tenant(graph_emulator, users=1)
    changes = {"wrong secret": {"client_secret": "xyz8Q~definitely-not-the-right-secret-000000"},
               "unknown tenant": {"tenant_id": str(uuid.uuid4())},
               "unknown app": {"client_id": str(uuid.uuid4())}}[case]
    before = integration_ids(app)

    status, body, _ = create(app, tenant, **changes)

    assert status == 400, body
    error = body["error"]
    assert error["code"] == expected_code and error["field"] == field
    assert error["aadsts"] in (7000215, 90002, 700016) and f"AADSTS{error['aadsts']}" in error["message"]
    assert error["hint"] in error["message"]
    assert integration_ids(app) == before
    assert take_requests(sync_queue) == []


def test_missing_directory_permission_is_refused_naming_it(app, sync_queue, graph_emulator):
    tenant = new_tenant(graph_emulator, roles={"Calendars.ReadWrite"})
    before = integration_ids(app)
    status, body, _ = create(app, tenant)
    assert status == 422
    assert body["error"]["code"] == "permission_missing" and body["error"]["missing_permissions"] == ["User.Read.All"]
    assert "User.Read.All" in body["error"]["message"]
    assert integration_ids(app) == before and take_requests(sync_queue) == []


def test_without_calendar_permission_the_integration_is_users_only(app, sync_queue, graph_emulator):
    tenant = new_tenant(graph_emulator, roles={"User.Read.All"}, users=2)
    status, body, _ = create(app, tenant)
    assert status == 201 and body["mode"] == "users_only" and body["granted_permissions"] == ["User.Read.All"]
    (request,) = take_requests(sync_queue)
    run_worker(app, request)
    assert len(all_users(app, integration_id=body["id"])) == 2


def test_bad_requests_name_the_problem(app, graph_emulator):
    tenant = new_tenant(graph_emulator, users=1)
    status, body, _ = call(app, "integrations_create", "POST", "integrations", b"{not json")
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, body, _ = create(app, tenant, tenant_id="not-a-guid")
    assert (status, body["error"]["field"]) == (422, "tenant_id")
    status, body, _ = create(app, tenant, domains=["contoso"])
    assert (status, body["error"]["field"]) == (422, "domains[0]")
    status, body, _ = create(app, tenant, colour="blue")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "unknown_field", "colour")
    missing = str(uuid.uuid4())
    for name, method in (("integrations_get", "GET"), ("integrations_update", "PATCH"),
                         ("integrations_delete", "DELETE"), ("integrations_status", "GET"),
                         ("integrations_sync_users", "POST")):
        status, body, _ = call(app, name, method, "x", {"options": {}}, route={"integration_id": missing})
        assert (status, body["error"]["code"]) == (404, "not_found"), name
    status, body, _ = call(app, "integrations_get", "GET", "x", route={"integration_id": "../../etc"})
    assert status == 404
    status, body, _ = call(app, "users_list", "GET", "users", params={"page_size": "5000"})
    assert (status, body["error"]["field"]) == (422, "page_size")
    status, body, _ = call(app, "users_list", "GET", "users", params={"continuation": "garbage!"})
    assert (status, body["error"]["code"]) == (400, "invalid_continuation")
    status, body, _ = call(app, "users_list", "GET", "users", params={"integration_id": "nope"})
    assert (status, body["error"]["field"]) == (422, "integration_id")
    status, body, _ = call(app, "users_list", "GET", "users", params={"colour": "blue"})
    assert (status, body["error"]["field"]) == (400, "colour")


def test_patch_changes_options_and_a_second_tenant_connection_is_a_conflict(app, sync_queue, graph_emulator):
    tenant = new_tenant(graph_emulator, users=1)
    status, created, _ = create(app, tenant)
    assert status == 201
    route = {"integration_id": created["id"]}
    status, body, _ = call(app, "integrations_update", "PATCH", "x", {"options": {"max_deactivation_share": 0.5}},
                           route=route)
    assert status == 200 and body["options"]["max_deactivation_share"] == 0.5
    status, body, _ = call(app, "integrations_update", "PATCH", "x", {"options": {"max_deactivation_share": 2}},
                           route=route)
    assert (status, body["error"]["field"]) == (422, "options.max_deactivation_share")
    status, body, _ = call(app, "integrations_update", "PATCH", "x", {"tenant_id": tenant.tenant_id}, route=route)
    assert (status, body["error"]["code"]) == (400, "unknown_field")
    status, body, _ = create(app, tenant)
    assert (status, body["error"]["code"], body["error"]["integration_id"]) == (409, "duplicate_tenant", created["id"])
    status, body, _ = call(app, "integrations_sync_users", "POST", "x", params={"force": "perhaps"}, route=route)
    assert (status, body["error"]["field"]) == (400, "force")


def test_no_secret_in_any_answer_log_line_or_stored_row(app, sync_queue, graph_emulator, caplog,
                                                        storage_connection_string):
    """The whole flow at DEBUG, msal and urllib3 included: connect with a wrong and a right
    secret, sync, read, rotate the secret, sync again, delete."""
    caplog.set_level(logging.DEBUG)
    for name in ("msal", "urllib3", "azure", "requests"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    forget_shared_apps()  # make msal fetch tokens (and log) again in this test
    tenant = new_tenant(graph_emulator, users=3)
    wrong = "bad8Q~this-one-is-wrong-but-still-secret-00000"
    answers = []
    status, body, _ = create(app, tenant, client_secret=wrong)
    answers.append(body)
    assert status == 400
    status, created, _ = create(app, tenant)
    answers.append(created)
    assert status == 201
    route = {"integration_id": created["id"]}
    for message in take_requests(sync_queue):
        run_worker(app, message)
    rotated = requests.post(f"{graph_emulator.base_url}/_control/tenants/{tenant.tenant_id}/apps/"
                            f"{tenant.client_id}/secrets", json={}, verify=graph_emulator.ca_path,
                            timeout=30).json()["value"]
    for name, method, body, params in (
            ("integrations_get", "GET", None, None), ("integrations_status", "GET", None, None),
            ("integrations_update", "PATCH", {"client_secret": rotated}, None),
            ("integrations_sync_users", "POST", None, None)):
        status, answer, _ = call(app, name, method, "x", body, params=params, route=route)
        assert status < 300, answer
        answers.append(answer)
    for message in take_requests(sync_queue):
        run_worker(app, message)
    answers.append(call(app, "integrations_list", "GET", "integrations")[1])
    answers.append(call(app, "users_list", "GET", "users", params={"integration_id": created["id"]})[1])
    table = Store.from_location(StorageLocation(connection_string=storage_connection_string)).table("integrations")
    stored = dict(table.get("integrations", created["id"]))
    status, _, _ = call(app, "integrations_delete", "DELETE", "x", route=route)
    assert status == 202

    secrets = (tenant.client_secret, wrong, rotated)
    assert len(caplog.records) > 50
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "msal" in {r.name.split(".")[0] for r in caplog.records}
    assert "urllib3" in {r.name.split(".")[0] for r in caplog.records}
    for secret in secrets:
        assert secret not in logged
        assert secret not in json.dumps(answers)
        assert secret not in json.dumps(stored, default=str)
    assert stored["SealedSecret"].startswith("v2:")


def test_fifty_concurrent_connects_of_one_tenant_make_exactly_one_integration(app, sync_queue, graph_emulator):
    """The duplicate check before the credentials are tried cannot see a connect still in flight;
    the tenant's guard row, written in the integration's own transaction, can."""
    tenant = new_tenant(graph_emulator, users=1)
    start = threading.Barrier(50)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def connect() -> None:
        start.wait()
        status, body, _ = create(app, tenant)
        with lock:
            answers.append((status, body))

    threads = [threading.Thread(target=connect) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 49, statuses
    (winner,) = [body for status, body in answers if status == 201]
    assert {body["error"]["code"] for status, body in answers if status == 409} == {"duplicate_tenant"}
    assert {body["error"]["integration_id"] for status, body in answers if status == 409} == {winner["id"]}
    mine = [i for i in call(app, "integrations_list", "GET", "integrations")[1]["value"]
            if i["tenant_id"] == tenant.tenant_id]
    assert [i["id"] for i in mine] == [winner["id"]]


def test_a_domain_of_another_integration_is_refused_and_freed_by_its_deletion(app, sync_queue, graph_emulator,
                                                                              storage_connection_string):
    first, second = new_tenant(graph_emulator, users=1), new_tenant(graph_emulator, users=1)
    status, created, _ = create(app, first)
    assert status == 201
    status, body, _ = create(app, second, domains=[second.domain, first.domain])
    assert (status, body["error"]["code"], body["error"]["integration_id"]) == (409, "duplicate_domain",
                                                                                created["id"])
    status, _, _ = call(app, "integrations_delete", "DELETE", "x", route={"integration_id": created["id"]})
    assert status == 202
    status, body, _ = create(app, second, domains=[second.domain, first.domain])
    assert (status, body["error"]["code"]) == (409, "integration_deleting")
    for message in take_messages(storage_connection_string, PURGE_QUEUE, created["id"]):
        run_purge_worker(app, message)
    status, body, _ = create(app, second, domains=[second.domain, first.domain])
    assert status == 201, body


def take_messages(connection_string: str, queue: str, integration_id: str) -> list[dict]:
    """This integration's messages on the queue (other tests' are taken too, and dropped)."""
    client = queue_service(StorageLocation(connection_string=connection_string)).get_queue_client(queue)
    try:
        return [m for m in take_requests(client) if m.get("integration_id") == integration_id]
    except ResourceNotFoundError:
        return []


def run_purge_worker(app, message: dict) -> None:
    app["integration_purge_worker"](func.QueueMessage(id=str(uuid.uuid4()), body=json.dumps(message).encode()))


def test_a_deleted_tenant_is_unreadable_from_the_request_on_even_while_its_purge_is_half_done(
        app, sync_queue, graph_emulator, storage_connection_string):
    tenant = new_tenant(graph_emulator, users=6)
    kept = new_tenant(graph_emulator, users=2)
    status, created, _ = create(app, tenant)
    status_kept, other, _ = create(app, kept)
    assert (status, status_kept) == (201, 201)
    for message in take_requests(sync_queue):
        run_worker(app, message)
    route = {"integration_id": created["id"]}
    assert len(all_users(app, integration_id=created["id"])) == 6

    status, accepted, response = call(app, "integrations_delete", "DELETE", "x", route=route)

    assert status == 202 and accepted["status"] == "deleting" and accepted["purge_queued"] is True
    assert response.headers["Location"] == f"/api/integrations/{created['id']}/status"

    def unreadable() -> None:
        for name, method, body in (("integrations_get", "GET", None), ("integrations_update", "PATCH", {"options": {}}),
                                   ("integrations_sync_users", "POST", None)):
            status, body, _ = call(app, name, method, "x", body, route=route)
            assert (status, body["error"]["code"]) == (404, "not_found"), name
        assert created["id"] not in integration_ids(app) and other["id"] in integration_ids(app)
        status, body, _ = call(app, "users_list", "GET", "users", params={"integration_id": created["id"]})
        assert status == 404
        everyone = all_users(app, page_size="200")
        assert all(p["integration_id"] != created["id"] for p in everyone)
        assert {p["integration_id"] for p in everyone} >= {other["id"]}
        status, body, _ = call(app, "integrations_status", "GET", "x", route=route)
        assert status == 200 and set(body) == {"integration_id", "status", "status_changed_at", "deletion"}
        assert body["status"] == "deleting"
        return body["deletion"]

    unreadable()
    # A purge that stops half way (small slices, no time budget: one slice per invocation).
    location = StorageLocation(connection_string=storage_connection_string)
    store = Store.from_location(location)
    halting = IntegrationPurge(integrations=IntegrationsRepo(store), steps=purge_steps(store, utc_now, rows_per_slice=4),
                               requester=PurgeRequester(QueuePublisher(queue_service(location), PURGE_QUEUE)),
                               budget=timedelta(0))
    (message,) = take_messages(storage_connection_string, PURGE_QUEUE, created["id"])
    for _ in range(3):
        assert halting.run(message["integration_id"]).outcome == "in_progress"
        # It queued its own continuation.
        assert take_messages(storage_connection_string, PURGE_QUEUE, created["id"]) == [message]
    remaining = list(store.table("users").query(partition=created["id"]))
    assert remaining  # people are still stored...
    deletion = unreadable()  # ...and none of them is readable
    assert {"user-sync-lease", "email-guard"} <= set(deletion["completed_steps"])
    assert deletion["pending_steps"][-2:] == ["people", "sync-state"]

    # The worker resumes where it stopped and only then removes the integration and its guards.
    run_purge_worker(app, message)
    assert list(store.table("users").query(partition=created["id"])) == []
    assert IntegrationsRepo(store).get(created["id"]) is None
    assert IntegrationsRepo(store).guard_owner("tenant", tenant.tenant_id) is None
    assert SyncStateRepo(store).get(created["id"]).etag is None
    status, body, _ = call(app, "integrations_status", "GET", "x", route=route)
    assert status == 404
    assert len(all_users(app, integration_id=other["id"])) == 2
    status, again, _ = create(app, tenant)
    assert status == 201 and again["id"] != created["id"]
