"""A local Functions host wired for the room sync: its PUBLIC_BASE_URL is its own address, so the
Graph emulator's deliveries reach its webhooks; plus helpers to connect a tenant, link and
subscribe rooms, and act in Outlook."""
from __future__ import annotations

import base64
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from devtools.localhost import LocalHost
from devtools.ports import free_port
from functions import context
from sync.settings import SETTING_NAMES
from tests.support.calendar_client import CalendarClient
from tests.support.emulator_fixture import EmulatorTenant, new_tenant
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "e2e-room-sync-function-key"
KEY = {"x-functions-key": FUNCTION_KEY}


def start_room_host(graph_emulator, storage_connection_string: str, *, queue_poll_seconds: float = 0.2,
                    host_config: Path = ROOT / "host.json", wrap_app: Callable[[Any], Any] | None = None,
                    **extra: str) -> Iterator[LocalHost]:
    """`host_config` replaces the app's host.json (e.g. shorter queue timings); `wrap_app` gets the
    freshly loaded FunctionApp and returns what the host serves (e.g. the app minus some workers)."""
    port = free_port()
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SECRET_ENCRYPTION_KEY": base64.b64encode(b"e2e-room-sync-encryption-key-32b").decode(),
        "GRAPH_AUTHORITY_HOST": graph_emulator.authority_host,
        "GRAPH_API_BASE": graph_emulator.api_base,
        "GRAPH_CA_BUNDLE": graph_emulator.ca_path,
        "USER_SYNC_SCHEDULE": "0 0 2 * * *",
        "SUBSCRIPTION_RENEWAL_SCHEDULE": "0 0 */6 * * *",
        "RECURRENCE_SCHEDULE": "0 30 1 * * *",
        **extra,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTING_NAMES:
            patch.delenv(name, raising=False)
        for name, value in settings.items():
            patch.setenv(name, value)
        context.reset()
        module = sys.modules.get("function_app")
        module = importlib.reload(module) if module else importlib.import_module("function_app")
        app = module.app if wrap_app is None else wrap_app(module.app)
        local = LocalHost(app, port, host_config=host_config,
                          settings={**settings, "LOCAL_FUNCTION_KEY": FUNCTION_KEY},
                          queue_poll_seconds=queue_poll_seconds)
        with local:
            yield local
        context.reset()


@dataclass
class RoomWorld:
    """One connected tenant with linked, subscribed rooms, driven through the host's API."""

    host: LocalHost
    tenant: EmulatorTenant
    integration_id: str
    assets: dict[str, dict]  # room email -> asset

    @property
    def calendar(self) -> CalendarClient:
        return CalendarClient(self.tenant)

    def api(self, path: str) -> str:
        return f"{self.host.base_url}/api/{path}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.api(path), params=params, headers=KEY, timeout=30)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return requests.post(self.api(path), json=body, headers=KEY, timeout=60)

    def reservations(self, room: str, **params: Any) -> list[dict]:
        answer = self.get("reservations", asset_id=self.assets[room]["id"], **params)
        assert answer.status_code == 200, answer.text
        return answer.json()["value"]

    def wait_reservations(self, room: str, condition, timeout: float = 20.0) -> list[dict]:
        return wait_for(lambda: (lambda found: found if condition(found) else None)(self.reservations(room)),
                        timeout=timeout, interval=0.2)

    def meeting(self, organizer: str, **body: Any) -> dict:
        answer = self.calendar.control_call("POST", organizer, "meetings", body=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def settle(self) -> None:
        """Waits until the emulator has delivered every pending notification."""
        self.tenant.server.world  # noqa: B018 (the world is shared; delivery is per tenant)
        from devtools.graph_emulator.delivery import delivery_service

        delivery_service(self.tenant.server.world).wait_idle(self.tenant.tenant_id, timeout=20)


def connect(host: LocalHost, tenant: EmulatorTenant, rooms: list[str], **options: Any) -> RoomWorld:
    base = f"{host.base_url}/api"
    body = {"domains": [tenant.domain], "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
            "client_secret": tenant.client_secret}
    if options:
        body["options"] = options
    answer = requests.post(f"{base}/integrations", json=body, headers=KEY, timeout=60)
    assert answer.status_code == 201, answer.text
    integration_id = answer.json()["id"]

    def people_synced():
        status = requests.get(f"{base}/integrations/{integration_id}/status", headers=KEY, timeout=30).json()
        return status if status["user_sync"]["last_success_at"] else None

    wait_for(people_synced, timeout=30, interval=0.2)
    assets = {}
    for room in rooms:
        made = requests.post(f"{base}/assets", json={"integration_id": integration_id, "room": room},
                             headers=KEY, timeout=60)
        assert made.status_code == 201, made.text
        subscribed = requests.post(f"{base}/assets/{made.json()['id']}/subscription", headers=KEY, timeout=60)
        assert subscribed.status_code == 201, subscribed.text
        assets[room] = {**made.json(), "subscription": subscribed.json()}
    return RoomWorld(host=host, tenant=tenant, integration_id=integration_id, assets=assets)


def connect_new_tenant(host: LocalHost, graph_emulator, *, users: int, rooms: int) -> "RoomWorld":
    """A fresh emulator tenant, connected through the API, with every room linked and subscribed."""
    tenant = new_tenant(graph_emulator, users=users, rooms=rooms)
    return connect(host, tenant, [room.email for room in tenant.rooms])
