"""Tenant isolation through the local host: two connected tenants (A the caller, B the victim),
each with people, a subscribed room and a booking. Every HTTP route the app registers is called
with B's ids mixed into A's (path, query, body) and must refuse (400/403/404/409/422) or show
nothing of B; B's data must be unchanged after each call. Queue workers are handed messages
that pair A's integration with B's asset, reservation, person or subscription and must change
nothing of B.

The routes come from the app's own function metadata; CASES must name every one of them, so a
new route fails here until someone writes down how it keeps tenants apart."""
from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone

import pytest
import requests

from devtools.graph_emulator.subscription_model import locate
from functions import room_context
from tests.support.held_queues import AppWithout, queue_message
from tests.support.polling import wait_for
from tests.support.room_host import KEY
from tests.support.tenant_worlds import TenantWorld, build_tenant_world, utc_slot
from tests.unit.test_openapi import http_routes

REFUSED = (400, 403, 404, 409, 422)


@pytest.fixture(scope="module")
def pair(host, graph_emulator) -> tuple[TenantWorld, TenantWorld]:
    a = build_tenant_world(host, graph_emulator, booking_day=3)
    b = build_tenant_world(host, graph_emulator, booking_day=4)
    for world in (a, b):  # both bookings in Outlook and their notifications handled
        wait_for(lambda: world.get(f"reservations/{world.reservation['id']}").json()["sync_status"] != "pending",
                 timeout=30, interval=0.2, what="the booking to reach Outlook")
        world.room.settle()
        _settled(world)
    return a, b


def _settled(world: TenantWorld) -> None:
    """The host's workers have finished with what the setup caused (the notifications of the
    booking touch the asset): the snapshot stays the same over several polls."""
    seen: list[dict] = []

    def steady():
        seen.append(snapshot(world))
        return len(seen) >= 4 and all(s == seen[-1] for s in seen[-4:])

    wait_for(steady, timeout=30, interval=0.3, what="the tenant's data to settle")


@pytest.fixture(scope="module")
def letter(pair):
    """A dead letter of B's, kept as the poison handler keeps one."""
    b = pair[1]
    text = json.dumps({"integration_id": b.integration_id, "asset_id": b.asset["id"], "reason": "isolation"})
    kept = room_context.deadletters().keep("calendar-resync", f"iso-{uuid.uuid4().hex}", text, "test",
                                           datetime.now(timezone.utc), 5)
    return kept.view()["id"]


def snapshot(world: TenantWorld) -> dict:
    """What B owns, as the API shows it (volatile run counters left out)."""
    integration = world.get(f"integrations/{world.integration_id}").json()
    assets = world.get("assets", integration_id=world.integration_id).json()["value"]
    return {
        "integration": {k: integration.get(k) for k in ("id", "domains", "tenant_id", "client_id", "status", "options")},
        "assets": sorted(json.dumps(a, sort_keys=True) for a in assets),
        "reservations": sorted(json.dumps(r, sort_keys=True) for asset in assets
                               for r in world.get("reservations", asset_id=asset["id"]).json()["value"]),
        "users": sorted(json.dumps(u, sort_keys=True) for u in world.get(
            "users", integration_id=world.integration_id, page_size="1000").json()["value"]),
    }


class Call:
    def __init__(self, host, a: TenantWorld, b: TenantWorld, letter: str, graph_emulator) -> None:
        self.host, self.a, self.b, self.letter, self.emulator = host, a, b, letter, graph_emulator

    def __call__(self, method: str, path: str, *, params=None, body=None, key: bool = True) -> requests.Response:
        return requests.request(method, f"{self.host.base_url}/api/{path}", params=params, json=body, timeout=60,
                                headers=KEY if key else {})

    def refused(self, answer: requests.Response) -> None:
        assert answer.status_code in REFUSED, (answer.status_code, answer.text[:300])
        assert answer.json()["error"]["code"], answer.text

    def nothing_of_b(self, answer: requests.Response) -> None:
        """Answered, but nothing in it is B's."""
        assert answer.status_code < 300, (answer.status_code, answer.text[:300])
        text = answer.text.lower()
        secrets = [self.b.integration_id, *self.b.asset_ids, self.b.reservation["id"], *self.b.emails,
                   *(u.lower() for u in self.b.user_ids)]
        assert not [s for s in secrets if s.lower() in text], answer.text[:500]

    def refused_or_nothing(self, answer: requests.Response) -> None:
        if answer.status_code in REFUSED:
            self.refused(answer)
        else:
            self.nothing_of_b(answer)


def _continuation_of_b(call: Call) -> str:
    page = call("GET", "users", params={"integration_id": call.b.integration_id, "page_size": "1"}).json()
    assert page["continuation"], "B needs two people for a continuation token"
    return page["continuation"]


A_ID = "integration_id"
b_asset = lambda c: c.b.asset["id"]  # noqa: E731 -- short accessors keep the table readable
b_res = lambda c: c.b.reservation["id"]  # noqa: E731


def _each(*checks):
    def run(call: Call) -> None:
        for check in checks:
            check(call)
    return run


# (OpenAPI path, method) -> what A sends with B's ids, and what it must get.
CASES = {
    ("/integrations", "get"): "global: the operator's list of every integration (one function key per deployment)",
    ("/integrations", "post"): lambda c: c.refused(c("POST", "integrations", body={
        "domains": [c.a.room.tenant.domain], "tenant_id": c.b.tenant_id, "client_id": c.b.room.tenant.client_id,
        "client_secret": c.b.room.tenant.client_secret})),
    ("/integrations/{integration_id}", "get"): lambda c: c.refused(c(
        "GET", f"integrations/{c.b.integration_id}", params={A_ID: c.a.integration_id})),
    ("/integrations/{integration_id}", "patch"): _each(
        lambda c: c.refused(c("PATCH", f"integrations/{c.b.integration_id}",
                              body={"client_secret": c.a.room.tenant.client_secret})),
        lambda c: c.refused(c("PATCH", f"integrations/{c.b.integration_id}",
                              body={A_ID: c.a.integration_id, "options": {"max_deactivation_share": 1}}))),
    ("/integrations/{integration_id}", "delete"): lambda c: c.refused(c(
        "DELETE", f"integrations/{c.b.integration_id}", params={A_ID: c.a.integration_id})),
    ("/integrations/{integration_id}/status", "get"): lambda c: c.refused(c(
        "GET", f"integrations/{c.b.integration_id}/status", params={A_ID: c.a.integration_id})),
    ("/integrations/{integration_id}/sync-users", "post"): lambda c: c.refused(c(
        "POST", f"integrations/{c.b.integration_id}/sync-users", params={A_ID: c.a.integration_id})),
    ("/integrations/{integration_id}/rooms", "get"): lambda c: c.refused(c(
        "GET", f"integrations/{c.b.integration_id}/rooms", params={A_ID: c.a.integration_id})),
    ("/users", "get"): _each(
        lambda c: c.nothing_of_b(c("GET", "users", params={A_ID: c.a.integration_id, "page_size": "1000"})),
        lambda c: c.refused_or_nothing(c("GET", "users", params={
            A_ID: c.a.integration_id, "continuation": _continuation_of_b(c)}))),
    ("/assets", "get"): lambda c: c.nothing_of_b(c("GET", "assets", params={A_ID: c.a.integration_id})),
    ("/assets", "post"): _each(
        lambda c: c.refused(c("POST", "assets", body={A_ID: c.a.integration_id, "room": c.b.mailboxes[0]})),
        lambda c: c.refused(c("POST", "assets", body={A_ID: c.a.integration_id, "mailbox": c.b.mailboxes[0]}))),
    ("/assets/{asset_id}", "get"): lambda c: c.refused(c("GET", f"assets/{b_asset(c)}", params={A_ID: c.a.integration_id})),
    ("/assets/{asset_id}", "patch"): _each(
        lambda c: c.refused(c("PATCH", f"assets/{b_asset(c)}", body={A_ID: c.a.integration_id, "name": "taken"})),
        lambda c: c.refused(c("PATCH", f"assets/{b_asset(c)}", params={A_ID: c.a.integration_id},
                              body={"name": "taken"}))),
    ("/assets/{asset_id}", "delete"): lambda c: c.refused(c(
        "DELETE", f"assets/{b_asset(c)}", params={A_ID: c.a.integration_id})),
    ("/assets/{asset_id}/subscription", "post"): lambda c: c.refused(c(
        "POST", f"assets/{b_asset(c)}/subscription", params={A_ID: c.a.integration_id})),
    ("/assets/{asset_id}/subscription", "delete"): lambda c: c.refused(c(
        "DELETE", f"assets/{b_asset(c)}/subscription", params={A_ID: c.a.integration_id})),
    ("/assets/{asset_id}/resync", "post"): lambda c: c.refused(c(
        "POST", f"assets/{b_asset(c)}/resync", params={A_ID: c.a.integration_id})),
    ("/assets/{asset_id}/import", "post"): lambda c: c.refused(c(
        "POST", f"assets/{b_asset(c)}/import", body={A_ID: c.a.integration_id, "from": utc_slot(1, 0)[0],
                                                     "to": utc_slot(9, 0)[0], "dry_run": False})),
    ("/reservations", "get"): _each(
        lambda c: c.refused_or_nothing(c("GET", "reservations", params={A_ID: c.a.integration_id,
                                                                        "asset_id": b_asset(c)})),
        lambda c: c.refused_or_nothing(c("GET", "reservations", params={A_ID: c.a.integration_id,
                                                                        "user": c.b.emails[0]})),
        lambda c: c.refused_or_nothing(c("GET", "reservations", params={A_ID: c.a.integration_id,
                                                                        "user": c.b.user_ids[0]}))),
    ("/reservations", "post"): _each(
        lambda c: c.refused(c("POST", "reservations", body={
            "asset_id": b_asset(c), "booker": c.a.emails[0], "start": utc_slot(8, 9)[0], "end": utc_slot(8, 9)[1],
            "subject": "A books B's room", A_ID: c.a.integration_id})),
        lambda c: c.refused(c("POST", "reservations", body={
            "asset_id": c.a.asset["id"], "booker": c.b.emails[0], "start": utc_slot(8, 11)[0],
            "end": utc_slot(8, 11)[1], "subject": "B's person in A's room"})),
        lambda c: c.refused(c("POST", "reservations", body={
            "asset_id": b_asset(c), "booker": c.b.emails[0], "start": utc_slot(8, 13)[0], "end": utc_slot(8, 13)[1],
            "subject": "B's booking under A's integration", A_ID: c.a.integration_id}))),
    ("/reservations/{reservation_id}", "get"): lambda c: c.refused(c(
        "GET", f"reservations/{b_res(c)}", params={A_ID: c.a.integration_id})),
    ("/reservations/{reservation_id}", "patch"): _each(
        lambda c: c.refused(c("PATCH", f"reservations/{b_res(c)}", params={A_ID: c.a.integration_id},
                              body={"subject": "moved by A"})),
        lambda c: c.refused(c("PATCH", f"reservations/{b_res(c)}", body={A_ID: c.a.integration_id,
                                                                          "subject": "moved by A"}))),
    ("/reservations/{reservation_id}", "delete"): lambda c: c.refused(c(
        "DELETE", f"reservations/{b_res(c)}", params={A_ID: c.a.integration_id})),
    ("/synclog", "get"): _each(
        lambda c: c.refused_or_nothing(c("GET", "synclog", params={A_ID: c.a.integration_id, "asset_id": b_asset(c)})),
        lambda c: c.refused_or_nothing(c("GET", "synclog", params={A_ID: c.a.integration_id,
                                                                   "reservation_id": b_res(c)}))),
    ("/deadletters", "get"): lambda c: c.nothing_of_b(c("GET", "deadletters", params={A_ID: c.a.integration_id})),
    ("/deadletters/{letter_id}", "delete"): lambda c: c.refused(c(
        "DELETE", f"deadletters/{c.letter}", params={A_ID: c.a.integration_id})),
    ("/deadletters/{letter_id}/retry", "post"): lambda c: c.refused(c(
        "POST", f"deadletters/{c.letter}/retry", params={A_ID: c.a.integration_id})),
    ("/microsoft_graph/notifications/notification_url", "post"): lambda c: _forged_post(
        c, "microsoft_graph/notifications/notification_url", {"changeType": "deleted",
                                                              "resource": f"Users/x/Events/{_b_event(c)}",
                                                              "resourceData": {"id": _b_event(c)}}),
    ("/microsoft_graph/notifications/lifecycle_url", "post"): lambda c: _forged_post(
        c, "microsoft_graph/notifications/lifecycle_url", {"lifecycleEvent": "subscriptionRemoved"}),
    ("/health", "get"): "global: says whether storage answers; no tenant data",
    ("/status", "get"): "global: the operator's monitoring document over every integration",
    ("/openapi.json", "get"): "global: the API description; no data",
    ("/console", "get"): "global: the static console page; no data",
    ("/console/{file}", "get"): "global: the console's static files; no data",
}


def _b_event(call: Call) -> str:
    return call.b.reservation.get("room_event_id") or "AAMkAGIvictim="


def _forged_post(call: Call, path: str, fields: dict) -> None:
    """B's subscription with A's clientState and tenant, and B's with a forged state: 202, nothing done."""
    a_state = locate(call.emulator.world, call.a.subscription_id)[1].client_state
    for state, tenant in ((a_state, call.a.tenant_id), (a_state, call.b.tenant_id), ("forged", call.b.tenant_id)):
        item = {"subscriptionId": call.b.subscription_id, "clientState": state, "tenantId": tenant, **fields}
        answer = call("POST", path, body={"value": [item]}, key=False)
        assert answer.status_code == 202, answer.text


@pytest.fixture(scope="module")
def routes(host):
    return http_routes(AppWithout(sys.modules["function_app"].app, set()).get_functions())


def test_every_registered_route_has_an_isolation_case(routes):
    assert sorted(set(routes) - set(CASES)) == [], "a route without an isolation case: add one to CASES"
    assert sorted(set(CASES) - set(routes)) == [], "a case for a route the app no longer has"


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[1].upper()} {r[0]}")
def test_a_route_given_the_other_tenant_s_ids_refuses_or_shows_nothing_and_changes_nothing(
        host, pair, letter, graph_emulator, routes, route):
    """GET /reservations?integration_id=A&asset_id=B listed B's bookings until this test: the
    asset's own integration was used and the one named was ignored."""
    case = CASES[route]
    if isinstance(case, str):
        assert case.startswith("global: ")  # a written reason why the route has no tenant to cross
        return
    a, b = pair
    before = snapshot(b)
    case(Call(host, a, b, letter, graph_emulator))
    assert snapshot(b) == before
    assert b.get(f"integrations/{b.integration_id}/status").json()["status"] == "active"


WORKER_MESSAGES = {
    "room_change_worker": lambda a, b: {"items": [{"integration_id": a.integration_id, "asset_id": b.asset["id"],
                                                   "subscription_id": b.subscription_id,
                                                   "event_id": b.reservation.get("room_event_id") or "AAMkX=",
                                                   "change_type": "deleted"}], "deferrals": 0},
    "room_lifecycle_worker": lambda a, b: {"items": [{"integration_id": a.integration_id, "asset_id": b.asset["id"],
                                                      "subscription_id": b.subscription_id,
                                                      "lifecycle_event": "subscriptionRemoved"}]},
    "calendar_resync_worker": lambda a, b: {"integration_id": a.integration_id, "asset_id": b.asset["id"],
                                            "reason": "isolation"},
    "booking_changes_worker": lambda a, b: {"integration_id": a.integration_id, "reservation_id": b.reservation["id"]},
    "leaver_releases_worker": lambda a, b: {"integration_id": a.integration_id, "user_id": b.user_ids[0]},
    "integration_purge_worker": lambda a, b: {"integration_id": b.integration_id},
}


@pytest.mark.parametrize("worker", sorted(WORKER_MESSAGES))
def test_a_queue_message_pairing_one_tenant_with_the_other_s_ids_changes_nothing(host, pair, worker):
    a, b = pair
    before = snapshot(b)
    subscription_before = b.get(f"assets/{b.asset['id']}").json()["subscription"]
    run = AppWithout(sys.modules["function_app"].app, set()).worker(worker)
    try:
        run(queue_message(WORKER_MESSAGES[worker](a, b)))
    except Exception:  # noqa: BLE001 -- refusing the message is fine; changing B is not
        pass
    assert snapshot(b) == before
    assert b.get(f"assets/{b.asset['id']}").json()["subscription"]["id"] == subscription_before["id"]
