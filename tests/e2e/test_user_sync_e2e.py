"""The whole path through the local Functions host: an admin connects a tenant over HTTP with
the function key, the user-sync queue worker runs the first sync from Azurite, and the people
appear in GET /api/users. The Graph emulator stands in for Entra ID and Graph."""
from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError

from devtools.localhost import LocalHost
from functions import context
from sync.settings import SETTING_NAMES
from sync.store import StorageLocation, queue_service
from sync.store.connection import queue_client
from sync.users import USER_SYNC_QUEUE
from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "e2e-user-sync-function-key"


@pytest.fixture(scope="module")
def host(graph_emulator, storage_connection_string):
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "PUBLIC_BASE_URL": "http://127.0.0.1:7071",
        "SECRET_ENCRYPTION_KEY": base64.b64encode(b"e2e-user-sync-encryption-key-32b").decode(),
        "GRAPH_AUTHORITY_HOST": graph_emulator.authority_host,
        "GRAPH_API_BASE": graph_emulator.api_base,
        "GRAPH_CA_BUNDLE": graph_emulator.ca_path,
        "USER_SYNC_SCHEDULE": "0 0 2 * * *",
        "SUBSCRIPTION_RENEWAL_SCHEDULE": "0 */30 * * * *",
        "RECURRENCE_SCHEDULE": "0 30 1 * * *",
    }
    queue = queue_client(queue_service(StorageLocation(connection_string=storage_connection_string)), USER_SYNC_QUEUE)
    try:
        queue.clear_messages()  # requests left by other test modules are not this host's business
    except ResourceNotFoundError:
        pass
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTING_NAMES:
            patch.delenv(name, raising=False)
        for name, value in settings.items():
            patch.setenv(name, value)
        context.reset()
        module = sys.modules.get("function_app")
        module = importlib.reload(module) if module else importlib.import_module("function_app")
        local = LocalHost(module.app, 0, host_config=ROOT / "host.json",
                          settings={**settings, "LOCAL_FUNCTION_KEY": FUNCTION_KEY}, queue_poll_seconds=0.2)
        with local:
            yield local
        context.reset()


def api(host, path: str) -> str:
    return f"{host.base_url}/api/{path}"


KEY = {"x-functions-key": FUNCTION_KEY}


def test_connecting_a_tenant_syncs_its_people(host, graph_emulator):
    tenant = new_tenant(graph_emulator, users=6)
    body = {"domain": tenant.domain, "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
            "client_secret": tenant.client_secret}
    assert requests.post(api(host, "integrations"), json=body, timeout=30).status_code == 401

    response = requests.post(api(host, "integrations"), json=body, headers=KEY, timeout=30)

    assert response.status_code == 201, response.text
    created = response.json()
    assert tenant.client_secret not in response.text

    def synced():
        page = requests.get(api(host, "users"), params={"integration_id": created["id"], "page_size": "100"},
                            headers=KEY, timeout=30)
        assert page.status_code == 200, page.text
        return page.json()["value"] if len(page.json()["value"]) == 6 else None

    people = wait_for(synced, timeout=30.0, interval=0.1, what="the first user sync")
    assert sorted(p["email"] for p in people) == sorted(u.mail.lower() for u in tenant.users)

    def recorded():  # the people are written before the run's outcome is
        state = requests.get(api(host, f"integrations/{created['id']}/status"), headers=KEY, timeout=30).json()
        return state if (state["user_sync"]["last_run"] or {}).get("finished_at") else None

    status = wait_for(recorded, timeout=30.0, interval=0.1, what="the first run's outcome")
    assert status["user_sync"]["last_run"]["run_id"] == created["initial_user_sync"]["run_id"]
    assert status["user_sync"]["last_run"]["outcome"] == "applied" and status["users"]["active"] == 6

    # An admin's request runs through the same queue.
    requests.post(f"{graph_emulator.base_url}/_control/tenants/{tenant.tenant_id}/users/{tenant.users[0].id}/soft-delete",
                  verify=graph_emulator.ca_path, timeout=30).raise_for_status()
    accepted = requests.post(api(host, f"integrations/{created['id']}/sync-users"), headers=KEY, timeout=30)
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]

    def finished():
        state = requests.get(api(host, f"integrations/{created['id']}/status"), headers=KEY, timeout=30).json()
        last = state["user_sync"]["last_run"]
        return state if last and last["run_id"] == run_id and last["finished_at"] else None

    status = wait_for(finished, timeout=30.0, interval=0.1, what="the requested user sync")
    assert status["user_sync"]["last_run"]["counts"]["deactivated"] == 1 and status["users"]["active"] == 5
    inactive = requests.get(api(host, "users"), params={"integration_id": created["id"], "active": "false"},
                            headers=KEY, timeout=30).json()["value"]
    assert [p["id"] for p in inactive] == [tenant.users[0].id]
