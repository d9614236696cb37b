"""A lifecycle message acts only on a subscription of the integration it names: a message pairing
one tenant's integration id with another's subscription id (forged, or replayed from a dead letter
under the wrong tenant) reauthorizes, recreates and resyncs nothing."""
from __future__ import annotations

import pytest

from tests.support.sync_model_world import sync_world


@pytest.fixture
def world(graph_emulator, storage_connection_string):
    with sync_world(graph_emulator, storage_connection_string, users=1, rooms=1) as made:
        yield made


@pytest.mark.parametrize("event", ["missed", "reauthorizationRequired", "subscriptionRemoved"])
def test_a_lifecycle_event_naming_another_integration_changes_nothing(world, event):
    (link,) = world.links()
    at_graph = world.control("GET", f"subscriptions/{link.subscription_id}").json()

    outcome = world.subscriptions.on_lifecycle("another-tenant-integration", link.subscription_id, event)

    assert outcome == "not this integration's subscription"
    assert world.resyncs == []
    (after,) = world.links()
    assert (after.subscription_id, after.expires_at) == (link.subscription_id, link.expires_at)
    assert world.control("GET", f"subscriptions/{link.subscription_id}").json() == at_graph


def test_the_owner_s_missed_event_still_requests_a_resync(world):
    (link,) = world.links()
    assert world.subscriptions.on_lifecycle(world.iid, link.subscription_id, "missed") == "resync requested"
    assert world.resyncs == [(world.iid, link.asset_id, "missed")]
