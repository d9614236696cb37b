"""A subscription recreated after it was lost (renewal answered 404, or Graph removed it) keeps
the room's original subscription start, so the resync that follows books the meetings made in
Outlook while nothing listened, however long the gap was. Through the local host, Azurite and
the emulator."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests

from functions import room_context
from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for
from tests.support.room_host import KEY, connect

GAP = timedelta(minutes=10)  # well past the two minutes of clock skew a fresh subscription allows


@pytest.fixture
def world(host, graph_emulator):
    tenant = new_tenant(graph_emulator, users=1, rooms=1)
    world = connect(host, tenant, [room.email for room in tenant.rooms])
    # The resync that follows the subscription has finished (its delta link is saved), so only
    # the recreation's resync can see what the tests make next.
    asset_id = world.assets[tenant.rooms[0].email]["id"]
    wait_for(lambda: room_context.calendar_state().get(world.integration_id, asset_id)[0], timeout=20, interval=0.2,
             what="the first resync of the room")
    # The room has been subscribed for an hour: its history starts well before the gap.
    asset = _asset(world)
    since = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    room_context.assets_repo().update(replace(asset, subscription=replace(asset.subscription, subscribed_at=since)))
    world.since = since
    return world


def _asset(world):
    room = world.tenant.rooms[0].email
    return room_context.assets_repo().get_in(world.integration_id, world.assets[room]["id"])


def _control(graph_emulator, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{graph_emulator.base_url}/_control/{path}", verify=graph_emulator.ca_path,
                            timeout=30, **kwargs)


def _meeting_made_during_the_gap(world, graph_emulator) -> tuple[str, str]:
    """A meeting whose createdDateTime is GAP before now (the emulator's clock set back for it)."""
    day = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=2)
    start, end = (moment.isoformat().replace("+00:00", "Z") for moment in (day, day + timedelta(hours=1)))
    now = datetime.fromisoformat(_control(graph_emulator, "GET", "clock").json()["now"].replace("Z", "+00:00"))
    back = (now - GAP).isoformat().replace("+00:00", "Z")
    assert _control(graph_emulator, "POST", "clock", json={"set": back}).ok
    try:
        world.meeting(world.tenant.users[0].user_principal_name, subject="Booked while nobody listened",
                      start=start, end=end, rooms=[world.tenant.rooms[0].email])
    finally:
        assert _control(graph_emulator, "POST", "clock", json={"advance_seconds": GAP.total_seconds()}).ok
    return start, end


def _recreated(world, old: str):
    asset = _asset(world)
    return asset if asset.subscription.id not in (None, old) else None


def test_a_subscription_recreated_after_renewal_found_it_gone_books_what_was_made_meanwhile(world, graph_emulator):
    room = world.tenant.rooms[0].email
    old = world.assets[room]["subscription"]["id"]
    # Graph forgets the subscription without telling anyone (it expired unseen).
    assert _control(graph_emulator, "DELETE", f"subscriptions/{old}").status_code == 204
    start, end = _meeting_made_during_the_gap(world, graph_emulator)
    assert room_context.subscription_service().renew(room_context.subscriptions_repo().get(old)) == "recreated"
    asset = wait_for(lambda: _recreated(world, old), timeout=20, interval=0.2)
    assert asset.subscription.subscribed_at == world.since
    found = world.wait_reservations(room, lambda rs: len(rs) == 1)
    assert (found[0]["start"], found[0]["end"], found[0]["status"]) == (start, end, "confirmed")


def test_a_subscription_graph_removed_is_recreated_and_books_what_was_made_meanwhile(world, graph_emulator):
    room = world.tenant.rooms[0].email
    old = world.assets[room]["subscription"]["id"]
    tenant = world.tenant.tenant_id
    # Its notifications are held and then thrown away (no "missed" either): only the
    # recreation's resync can see the meeting.
    assert _control(graph_emulator, "PATCH", "deliveries/switches", json={"tenant": tenant, "pause": True}).ok
    try:
        start, end = _meeting_made_during_the_gap(world, graph_emulator)
        discarded = _control(graph_emulator, "DELETE", "deliveries/outbox", params={"tenant": tenant})
        assert discarded.json()["discarded"] >= 1
    finally:
        assert _control(graph_emulator, "DELETE", "deliveries/switches", params={"tenant": tenant}).status_code == 204
    assert _control(graph_emulator, "DELETE", f"subscriptions/{old}", params={"notify": "true"}).status_code == 204
    asset = wait_for(lambda: _recreated(world, old), timeout=20, interval=0.2)
    assert asset.subscription.subscribed_at == world.since
    found = world.wait_reservations(room, lambda rs: len(rs) == 1)
    assert (found[0]["start"], found[0]["end"], found[0]["status"]) == (start, end, "confirmed")


def test_unsubscribing_then_subscribing_starts_the_history_afresh(world):
    room = world.tenant.rooms[0].email
    path = f"assets/{world.assets[room]['id']}/subscription"
    gone = requests.delete(world.api(path), headers=KEY, timeout=30)
    assert gone.status_code == 200, gone.text
    again = world.post(path)
    assert again.status_code == 201, again.text
    started = datetime.fromisoformat(again.json()["subscribed_at"].replace("Z", "+00:00"))
    assert started > world.since + timedelta(minutes=30)
