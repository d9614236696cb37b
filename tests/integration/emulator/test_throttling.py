"""Outlook's per app + mailbox limits (4 concurrent, N per window) and the optional identity
resource-unit budget, observed over HTTPS."""
from __future__ import annotations

import threading

import pytest

from devtools.graph_emulator import seed
from devtools.graph_emulator.app import json_response
from devtools.graph_emulator.identity import DIRECTORY_READ, authorize
from tests.support.emulator_fixture import graph_session, post_client_credentials
from tests.support.emulator_modules import (  # noqa: F401 - tenant is a fixture
    add_mailbox_probe, control, own_emulator, tenant,
)
from tests.support.polling import wait_for


def directory_probe(ctx):
    """A minimal directory read (identity throttling applies to /users/... outside mailboxes)."""
    authorize(ctx, DIRECTORY_READ, kind="directory")
    return json_response({"ok": True})


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    # Own server: these tests move the clock and change global throttling settings.
    with own_emulator(tmp_path_factory) as server:
        add_mailbox_probe(server)
        server.app.route("/v1.0/users/<user>/directoryProbe", ["GET"], directory_probe,
                         name="test.directory_probe")
        yield server


@pytest.fixture(autouse=True)
def default_settings(emulator):
    yield
    control(emulator, "DELETE", "/_control/faults")
    control(emulator, "PATCH", "/_control/throttling", json={"enabled": True})


def set_limits(server, tenant, **limits):
    response = control(server, "PUT", f"/_control/throttling/tenants/{tenant.tenant_id}", json=limits)
    assert response.status_code == 200, response.text


def mailbox_stats(server, tenant, mailbox):
    stats = control(server, "GET", "/_control/throttling/stats",
                    params={"tenant": tenant.tenant_id, "mailbox": mailbox}).json()["mailboxes"]
    return stats[0] if stats else None


def probe(server, graph, mailbox, item="x", **kwargs):
    return graph.get(f"{server.api_base}/users/{mailbox}/calendar/probe/{item}", **kwargs)


def test_a_fifth_concurrent_request_to_one_mailbox_gets_application_throttled(emulator, tenant):
    busy, other = tenant.users
    control(emulator, "POST", "/_control/faults", json={"path": f"/users/{busy.id}/calendar/probe/slow", "delay_ms": 2500})
    graph = tenant.session()
    slow_answers: list[int] = []

    def slow_request():
        slow_answers.append(probe(emulator, graph, busy.id, "slow").status_code)

    threads = [threading.Thread(target=slow_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: (mailbox_stats(emulator, tenant, busy.id) or {}).get("in_flight") == 4,
             interval=0.01, what="four requests in flight")
    # The same mailbox, addressed by its UPN in other letter case.
    fifth = probe(emulator, graph, busy.user_principal_name.upper(), "fast")
    elsewhere = probe(emulator, graph, other.id, "fast")
    still_busy = mailbox_stats(emulator, tenant, busy.id)["in_flight"]
    for thread in threads:
        thread.join(timeout=30)

    assert still_busy == 4, "the slow requests must still overlap the fifth one"
    assert fifth.status_code == 429
    assert fifth.json()["error"]["code"] == "ApplicationThrottled"
    assert fifth.json()["error"]["message"] == "Application is over its MailboxConcurrency limit."
    assert float(fifth.headers["Retry-After"]) > 0
    assert elsewhere.status_code == 200
    assert slow_answers == [200, 200, 200, 200]
    stats = mailbox_stats(emulator, tenant, busy.id)
    assert (stats["max_concurrency"], stats["throttled_concurrency"], stats["in_flight"]) == (5, 1, 0)
    assert probe(emulator, graph, busy.id).status_code == 200


def test_sequential_requests_never_raise_the_recorded_concurrency_above_one(emulator, tenant):
    graph = tenant.session()
    for _ in range(5):
        assert probe(emulator, graph, tenant.users[0].id).status_code == 200

    stats = mailbox_stats(emulator, tenant, tenant.users[0].id)
    assert (stats["max_concurrency"], stats["requests"]) == (1, 5)


def test_the_request_budget_frees_up_as_the_window_slides(emulator, tenant):
    busy, other = tenant.users
    set_limits(emulator, tenant, mailbox_requests=5)
    graph = tenant.session()

    allowed = [probe(emulator, graph, busy.id).status_code for _ in range(5)]
    refused = probe(emulator, graph, busy.user_principal_name)
    elsewhere = probe(emulator, graph, other.id)

    assert allowed == [200] * 5
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert refused.json()["error"]["innerError"]["code"] == "429"
    retry_after = float(refused.headers["Retry-After"])
    assert 3 <= retry_after <= 600
    assert elsewhere.status_code == 200

    emulator.world.clock.advance(retry_after - 2)
    assert probe(emulator, graph, busy.id).status_code == 429
    emulator.world.clock.advance(2)
    assert probe(emulator, graph, busy.id).status_code == 200
    assert mailbox_stats(emulator, tenant, busy.id)["throttled_rate"] == 2


def test_uploads_are_budgeted_per_mailbox(emulator, tenant):
    busy, other = tenant.users
    set_limits(emulator, tenant, mailbox_upload_bytes=1000)
    graph = tenant.session()
    payload = {"body": "x" * 600}

    def upload(user):
        return graph.post(f"{emulator.api_base}/users/{user.id}/calendar/probe/upload", json=payload)

    first, refused, elsewhere = upload(busy), upload(busy), upload(other)

    assert first.status_code == 200
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "ApplicationThrottled"
    assert refused.json()["error"]["message"] == "Application is over its IncomingBytes limit."
    assert elsewhere.status_code == 200
    assert probe(emulator, graph, busy.id).status_code == 200  # reads are not uploads
    emulator.world.clock.advance(float(refused.headers["Retry-After"]))
    assert upload(busy).status_code == 200


def test_limits_are_per_app(emulator, tenant):
    set_limits(emulator, tenant, mailbox_requests=1)
    second_app = seed.add_app(emulator.world, tenant.tenant, display_name="another app")
    first = tenant.session()
    response = post_client_credentials(tenant.base_url, tenant.ca_path, tenant.tenant_id, second_app.client_id,
                                       second_app.secrets[0].value)
    second = graph_session(tenant.ca_path, response.json()["access_token"])

    assert probe(emulator, first, tenant.users[0].id).status_code == 200
    assert probe(emulator, first, tenant.users[0].id).status_code == 429
    assert probe(emulator, second, tenant.users[0].id).status_code == 200


def test_throttling_can_be_switched_off_globally(emulator, tenant):
    set_limits(emulator, tenant, mailbox_requests=1)
    graph = tenant.session()
    assert probe(emulator, graph, tenant.users[0].id).status_code == 200
    assert probe(emulator, graph, tenant.users[0].id).status_code == 429

    switched = control(emulator, "PATCH", "/_control/throttling", json={"enabled": False})

    assert switched.json()["enabled"] is False
    assert probe(emulator, graph, tenant.users[0].id).status_code == 200


def test_tenant_overrides_fall_back_to_the_defaults_when_removed(emulator, tenant):
    set_limits(emulator, tenant, mailbox_requests=1)
    graph = tenant.session()
    assert probe(emulator, graph, tenant.users[0].id).status_code == 200
    assert probe(emulator, graph, tenant.users[0].id).status_code == 429

    assert control(emulator, "DELETE", f"/_control/throttling/tenants/{tenant.tenant_id}").status_code == 204

    assert probe(emulator, graph, tenant.users[0].id).status_code == 200
    settings = control(emulator, "GET", "/_control/throttling").json()
    assert settings["defaults"]["mailbox_concurrency"] == 4
    assert settings["defaults"]["mailbox_requests"] == 10_000
    assert tenant.tenant_id not in settings["tenants"]


def test_identity_budget_is_off_by_default_but_charges_resource_units(emulator, tenant):
    graph = tenant.session()
    answers = [graph.get(f"{emulator.api_base}/users/{tenant.users[0].id}/directoryProbe") for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].headers["x-ms-resource-unit"] == "1"


def test_identity_budget_throttles_with_the_documented_headers(emulator, tenant):
    set_limits(emulator, tenant, identity_enabled=True, identity_resource_units=4)
    graph = tenant.session()
    url = f"{emulator.api_base}/users/{tenant.users[0].id}/directoryProbe"

    expanded = graph.get(url, params={"$expand": "manager"})  # 1 + 1
    small_top = graph.get(url, params={"$top": "5"})  # max(1, 1 - 1)
    last = graph.get(url)
    refused = graph.get(url)

    assert expanded.headers["x-ms-resource-unit"] == "2"
    assert small_top.headers["x-ms-resource-unit"] == "1"
    assert last.status_code == 200
    assert last.headers["x-ms-throttle-limit-percentage"] == "1.0"
    assert refused.status_code == 429
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert refused.headers["x-ms-throttle-scope"] == \
        f"Tenant_Application/ReadWrite/{tenant.client_id}/{tenant.tenant_id}"
    retry_after = float(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 10
    emulator.world.clock.advance(retry_after)
    assert graph.get(url).status_code == 200


@pytest.mark.parametrize("limits", [
    {"mailbox_requests": -1}, {"mailbox_concurrency": 2.5}, {"speed": 3}, {"identity_enabled": "yes"},
])
def test_invalid_limits_are_rejected(emulator, tenant, limits):
    response = control(emulator, "PUT", f"/_control/throttling/tenants/{tenant.tenant_id}", json=limits)
    assert response.status_code == 400


def test_limits_for_an_unknown_tenant_are_rejected(emulator):
    response = control(emulator, "PUT", "/_control/throttling/tenants/nobody.example.com", json={})
    assert response.status_code == 404


def test_stats_can_be_reset(emulator, tenant):
    graph = tenant.session()
    probe(emulator, graph, tenant.users[0].id)
    assert mailbox_stats(emulator, tenant, tenant.users[0].id)["requests"] == 1

    assert control(emulator, "DELETE", "/_control/throttling/stats",
                   params={"tenant": tenant.tenant_id}).status_code == 204

    stats = mailbox_stats(emulator, tenant, tenant.users[0].id)
    assert (stats["requests"], stats["max_concurrency"], stats["requests_in_window"]) == (0, 0, 0)
