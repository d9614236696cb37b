"""Fixtures and small clients for the subscription and delivery tests.

Test modules import the fixtures they use by name (`from tests.support.notification_fixtures
import notification_emulator, receiver, control, paths`). The emulator is module-scoped and
owned by these tests because they move its clock; settings are reset to a fast profile before
every test (short timeouts and back-off, small batch window) so nothing waits for real time.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Iterator

import pytest
import requests

from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.notification_settings import NotificationSettings
from devtools.graph_emulator.server import EmulatorServer
from tests.support.emulator_fixture import EmulatorTenant, graph_session, new_tenant, start_emulator
from tests.support.receiver import NotificationReceiver

FAST_SETTINGS = {
    "validation_timeout_seconds": 1.0,
    "ack_timeout_seconds": 0.5,
    "retry_timeout_seconds": 1.0,
    "backoff_factor": 0.002,
    "batch_window_seconds": 0.05,
    # Off unless a test is about it, so lifecycle URLs only see what a test asks for.
    "reauthorization_notice_minutes": 0.0,
}


class Control:
    """The emulator's control API for subscriptions and deliveries."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.http = graph_session(server.ca_path)
        self.base = f"{server.base_url}/_control"

    def call(self, method: str, path: str, expect: int | tuple[int, ...] = (200, 202, 204), **kwargs) -> requests.Response:
        response = self.http.request(method, self.base + path, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def settings(self, **values: Any) -> dict:
        return self.call("PATCH", "/notifications/settings", json=values).json()

    def reset(self) -> None:
        self.settings(**{**NotificationSettings().to_json(), **FAST_SETTINGS})
        self.call("DELETE", "/deliveries/switches")

    def switches(self, tenant: str | None = None, **values: Any) -> dict:
        return self.call("PATCH", "/deliveries/switches", json={**values, **({"tenant": tenant} if tenant else {})}).json()

    def publish(self, tenant: str, user: str, change_type: str, item_id: str | None = None, kind: str = "events",
                etag: str | None = None) -> list[dict]:
        body = {"tenant": tenant, "user": user, "change_type": change_type, "kind": kind}
        if item_id:
            body["item_id"] = item_id
        if etag:
            body["etag"] = etag
        return self.call("POST", "/changes", json=body).json()["published"]

    def flush(self, tenant: str, timeout: float = 10.0) -> dict:
        return self.call("POST", "/deliveries/flush", json={"tenant": tenant, "timeout_seconds": timeout}).json()

    def deliveries(self, tenant: str, **query: str) -> list[dict]:
        return self.call("GET", "/deliveries", params={"tenant": tenant, **query}).json()["value"]

    def outbox(self, tenant: str) -> list[dict]:
        return self.call("GET", "/deliveries/outbox", params={"tenant": tenant}).json()["value"]

    def subscriptions(self, tenant: str) -> list[dict]:
        return self.call("GET", "/subscriptions", params={"tenant": tenant}).json()["value"]

    def lifecycle(self, subscription_id: str, event: str, variant: str | None = None) -> None:
        body = {"lifecycle_event": event, **({"variant": variant} if variant else {})}
        self.call("POST", f"/subscriptions/{subscription_id}/lifecycle", json=body, expect=202)

    def advance(self, seconds: float) -> None:
        self.server.world.clock.advance(seconds)


class SubscriptionClient:
    """Graph's /subscriptions API as one tenant's app calls it."""

    def __init__(self, tenant: EmulatorTenant) -> None:
        self.tenant = tenant
        self.refresh()

    def refresh(self) -> None:
        """A new token (needed after moving the clock past the old one's lifetime)."""
        self.http = self.tenant.session()

    @property
    def base(self) -> str:
        return f"{self.tenant.api_base}/subscriptions"

    def expiry_in(self, minutes: float) -> str:
        return graph_datetime(self.tenant.world.clock.now() + timedelta(minutes=minutes))

    def create(self, resource: str, url: str, change_type: str = "created,updated,deleted", minutes: float = 120,
               headers: dict | None = None, **extra: Any) -> requests.Response:
        body = {"changeType": change_type, "notificationUrl": url, "resource": resource,
                "expirationDateTime": self.expiry_in(minutes), "clientState": "state-" + uuid.uuid4().hex[:8], **extra}
        return self.http.post(self.base, json={k: v for k, v in body.items() if v is not None}, headers=headers or {})

    def subscribe(self, resource: str, url: str, **kwargs: Any) -> dict:
        response = self.create(resource, url, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, subscription_id: str) -> requests.Response:
        return self.http.get(f"{self.base}/{subscription_id}")

    def patch(self, subscription_id: str, body: dict) -> requests.Response:
        return self.http.patch(f"{self.base}/{subscription_id}", json=body)

    def delete(self, subscription_id: str) -> requests.Response:
        return self.http.delete(f"{self.base}/{subscription_id}")

    def reauthorize(self, subscription_id: str) -> requests.Response:
        return self.http.post(f"{self.base}/{subscription_id}/reauthorize")

    def list_all(self) -> list[dict]:
        items, url = [], self.base
        while url:
            page = self.http.get(url)
            assert page.status_code == 200, page.text
            items.extend(page.json()["value"])
            url = page.json().get("@odata.nextLink")
        return items


def error_of(response: requests.Response) -> dict:
    return response.json()["error"]


@pytest.fixture(scope="module")
def notification_emulator(tmp_path_factory) -> Iterator[EmulatorServer]:
    with start_emulator(cert_dir=str(tmp_path_factory.mktemp("notification-emulator-tls"))) as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


@pytest.fixture
def control(notification_emulator) -> Iterator[Control]:
    client = Control(notification_emulator)
    client.reset()
    yield client
    client.call("DELETE", "/deliveries/switches")


@pytest.fixture
def paths() -> dict[str, str]:
    """Receiver paths unique to one test, so late retries of other tests never mix in."""
    prefix = "/" + uuid.uuid4().hex[:10]
    return {"notify": prefix + "/notify", "lifecycle": prefix + "/lifecycle"}


@pytest.fixture
def tenant(notification_emulator, control) -> EmulatorTenant:
    """A fresh tenant (default roles) with two people and one room."""
    return new_tenant(notification_emulator, users=2, rooms=1)


@pytest.fixture
def graph(tenant) -> SubscriptionClient:
    return SubscriptionClient(tenant)
