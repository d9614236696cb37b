"""Subscriptions against the emulator: longest accepted lifetime with clamping, renew,
reauthorize, delete, list."""
import secrets
from datetime import timedelta

import pytest

from graph import subscriptions
from graph.timestamps import parse_graph_time
from graph.errors import BadRequest, NotFound
from tests.integration.graph.support import graph_env, webhook_receiver  # noqa: F401  (module fixtures)

SETTINGS = "/_control/notifications/settings"


@pytest.fixture
def tenant(graph_env):
    graph_env.control.call("PATCH", SETTINGS, {"max_lifetime_minutes_events": 10070})
    return graph_env.tenant(users=2, rooms=2)


def _minutes_from_now(graph_env, subscription):
    left = parse_graph_time(subscription["expirationDateTime"]) - graph_env.server.world.clock.now()
    return left / timedelta(minutes=1)


def _create(graph_env, client, receiver, resource, change_type="created,updated,deleted"):
    return subscriptions.create_subscription(
        client, resource=resource, change_type=change_type, notification_url=receiver.url,
        lifecycle_notification_url=receiver.url, client_state=secrets.token_urlsafe(32))


def test_outlook_lifetime_is_clamped_to_what_graph_names(graph_env, tenant, webhook_receiver):
    client = graph_env.client(tenant)
    counts = graph_env.server.world.request_counts
    before = counts["subscriptions.create"]
    created = _create(graph_env, client, webhook_receiver, f"users/{tenant.rooms[0].email}/events")
    assert counts["subscriptions.create"] - before == 2  # 10,075 refused, then 10,070 - margin
    assert 10_064 <= _minutes_from_now(graph_env, created) <= 10_065


def test_a_lower_maximum_is_honoured_too(graph_env, tenant, webhook_receiver):
    graph_env.control.call("PATCH", SETTINGS, {"max_lifetime_minutes_events": 4230})
    client = graph_env.client(tenant)
    created = _create(graph_env, client, webhook_receiver, f"users/{tenant.rooms[1].email}/events")
    assert 4_224 <= _minutes_from_now(graph_env, created) <= 4_225
    renewed = subscriptions.renew_subscription(client, created["id"], resource=created["resource"])
    assert 4_224 <= _minutes_from_now(graph_env, renewed) <= 4_225


def test_users_get_the_directory_lifetime_first_time(graph_env, tenant, webhook_receiver):
    client = graph_env.client(tenant)
    counts = graph_env.server.world.request_counts
    before = counts["subscriptions.create"]
    created = _create(graph_env, client, webhook_receiver, "users", change_type="updated,deleted")
    assert counts["subscriptions.create"] - before == 1
    assert 41_754 <= _minutes_from_now(graph_env, created) <= 41_755
    assert created["id"] in {s["id"] for s in subscriptions.list_subscriptions(client)}
    assert subscriptions.delete_subscription(client, created["id"]) is True
    assert subscriptions.delete_subscription(client, created["id"]) is False


def test_renew_reauthorize_and_gone(graph_env, tenant, webhook_receiver):
    client = graph_env.client(tenant)
    created = _create(graph_env, client, webhook_receiver, f"users/{tenant.users[0].id}/events")
    graph_env.server.world.clock.advance(3600)
    try:
        renewed = subscriptions.renew_subscription(client, created["id"], resource=created["resource"])
        assert parse_graph_time(renewed["expirationDateTime"]) > parse_graph_time(created["expirationDateTime"])
        assert subscriptions.reauthorize_subscription(client, created["id"]) is None
        graph_env.control.call("POST", f"/_control/subscriptions/{created['id']}/expire")
        with pytest.raises(NotFound):
            subscriptions.renew_subscription(client, created["id"], resource=created["resource"])
    finally:
        graph_env.server.world.clock.advance(-3600)


def test_other_refusals_are_not_retried(graph_env, tenant, webhook_receiver):
    client = graph_env.client(tenant)
    counts = graph_env.server.world.request_counts
    before = counts["subscriptions.create"]
    with pytest.raises(BadRequest):
        subscriptions.create_subscription(client, resource="users", change_type="created",
                                          notification_url=webhook_receiver.url, client_state="x")
    assert counts["subscriptions.create"] - before == 1
