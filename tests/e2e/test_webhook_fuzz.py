"""Graph's two webhooks under hostile input, through the local host: generated and hand-made
posts (wrong types at every level, huge and deeply nested bodies, path tricks in ids, other
tenants' subscriptions and tenants, forged clientStates, lifecycle items in the change URL and
the reverse, odd validation tokens, replays).

The host runs the whole app except the two workers of graph-notifications and graph-lifecycle,
so whatever a post queued is still there to read: a test takes those queues after each post
and checks that only genuine items are on them. The replay test hands the queued messages to the
app's real worker, as the host would."""
from __future__ import annotations

import json
import os
import uuid
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.graph_emulator.subscription_model import locate
from sync.room_events import valid_graph_id
from tests.support.held_queues import HeldQueue, queue_message, start_host_without
from tests.support.polling import wait_for

from tests.support.tenant_worlds import TenantWorld, build_tenant_world, utc_slot

CHANGE_PATH = "microsoft_graph/notifications/notification_url"
LIFECYCLE_PATH = "microsoft_graph/notifications/lifecycle_url"
HELD = {"room_change_worker", "room_lifecycle_worker"}
# Generated posts per test: 20x ROOMSYNC_FUZZ_EXAMPLES for change posts, 12x for lifecycle posts.
SCALE = int(os.environ.get("ROOMSYNC_FUZZ_EXAMPLES", "6"))


@pytest.fixture(scope="module")
def held(graph_emulator, storage_connection_string):
    yield from start_host_without(graph_emulator, storage_connection_string, HELD)


@pytest.fixture(scope="module")
def host(held):
    return held[0]


@pytest.fixture(scope="module")
def queues(storage_connection_string):
    return {"change": HeldQueue(storage_connection_string, "graph-notifications"),
            "lifecycle": HeldQueue(storage_connection_string, "graph-lifecycle")}


def _quiet(world: TenantWorld) -> None:
    """The booking is in Outlook and the emulator has delivered what that caused."""
    wait_for(lambda: world.get(f"reservations/{world.reservation['id']}").json()["sync_status"] != "pending",
             timeout=30, interval=0.2, what="the booking to reach Outlook")
    world.room.settle()


@pytest.fixture(scope="module")
def pair(host, graph_emulator, queues) -> tuple[TenantWorld, TenantWorld]:
    """Two connected tenants, each with a subscribed room and a booking; queues emptied after."""
    first = build_tenant_world(host, graph_emulator, booking_day=3)
    second = build_tenant_world(host, graph_emulator, booking_day=4)
    for world in (first, second):
        _quiet(world)
    for queue in queues.values():
        queue.take()
    return first, second


def client_state(graph_emulator, world: TenantWorld) -> str:
    found = locate(graph_emulator.world, world.subscription_id)
    assert found is not None, "the emulator lost the subscription"
    return found[1].client_state


def change_item(graph_emulator, world: TenantWorld, event_id: str = "AAMkAGfuzzEventId=", **override) -> dict:
    room_user = world.mailboxes[0]
    item = {"subscriptionId": world.subscription_id, "clientState": client_state(graph_emulator, world),
            "changeType": "updated", "tenantId": world.tenant_id,
            "resource": f"Users/{room_user}/Events/{event_id}",
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": event_id},
            "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z"}
    item.update(override)
    return item


def lifecycle_item(graph_emulator, world: TenantWorld, **override) -> dict:
    item = {"subscriptionId": world.subscription_id, "clientState": client_state(graph_emulator, world),
            "lifecycleEvent": "missed", "tenantId": world.tenant_id,
            "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z"}
    item.update(override)
    return item


def post(host, path: str, body=None, *, raw: bytes | None = None, params: str = "") -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode("utf-8")
    return requests.post(f"{host.base_url}/api/{path}{params}", data=data, timeout=30,
                         headers={"content-type": "application/json"})


def queued_items(queue: HeldQueue) -> list[dict]:
    return [item for message in queue.take() for item in message["items"]]


def assert_json_error(answer: requests.Response) -> None:
    assert answer.headers["content-type"].startswith("application/json"), (answer.status_code, answer.text[:200])
    error = answer.json()["error"]
    assert error["code"] and error["message"], answer.text


def owner(world: TenantWorld) -> dict:
    return {"integration_id": world.integration_id, "asset_id": world.asset["id"],
            "subscription_id": world.subscription_id}


# ---- generated posts -----------------------------------------------------------------------

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
ANY_JSON = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=12)
HOSTILE_TEXT = st.sampled_from([
    "", " ", "..", "../", "a/../b", "../../subscriptions", "%2F", "..%2F..%2Fusers", "a%2Fb", "/", "//",
    "\x00", "a\x00b", "\r\n", "\x1b[31m", "\u202eevil", "\ufeff", "🙂", "é" * 600, "A" * 5000,
    "00000000-0000-0000-0000-000000000000", str(uuid.uuid4()), "Users('x')/Events('../y')",
    "users/room@x/events/AAMk..=", "https://evil.example/events/1"])


def hostile_value(extra: list) -> st.SearchStrategy:
    return st.one_of(ANY_JSON, HOSTILE_TEXT, st.sampled_from(extra), st.text(max_size=40))


AUTH_FIELDS = ("subscriptionId", "clientState", "tenantId")


@st.composite
def change_post(draw, graph_emulator, worlds: tuple[TenantWorld, TenantWorld]):
    """A post of 1-4 items: genuine ones of either tenant, and genuine ones with fields replaced by
    hostile values (or dropped). Returns the body and what each item was."""
    a, b = worlds
    extra = [a.subscription_id, b.subscription_id, a.tenant_id, b.tenant_id, client_state(graph_emulator, a),
             client_state(graph_emulator, b), a.integration_id, b.asset["id"], "created", "deleted",
             "created,updated", "missed"]
    items, kinds = [], []
    for _ in range(draw(st.integers(1, 4))):
        world = draw(st.sampled_from(worlds))
        event_id = draw(st.sampled_from(["AAMkAGIfuzz1=", "AAMkAGIfuzz/2+x=", "AAMkADI-zz_3"]))
        item = change_item(graph_emulator, world, event_id)
        changed = draw(st.lists(st.sampled_from(sorted(item) + ["organizationId", "lifecycleEvent"]),
                                unique=True, max_size=3))
        for name in changed:
            if draw(st.booleans()):
                item.pop(name, None)
            else:
                item[name] = draw(hostile_value(extra))
            if name == "resourceData" and isinstance(item.get(name), dict) and draw(st.booleans()):
                item[name] = {"id": draw(hostile_value(extra))}
        items.append(item)
        kinds.append((world, event_id, changed))
    wrapped = draw(st.integers(0, 4)) > 0
    return ({"value": items} if wrapped else draw(ANY_JSON)), kinds, wrapped


def _sent_genuinely(sent, world: TenantWorld, state: str) -> bool:
    """The item carried the subscription's own id, clientState and tenant (as the webhook reads them)."""
    tenant = sent.get("tenantId") or sent.get("organizationId")
    return (isinstance(sent.get("subscriptionId"), str) and sent["subscriptionId"].lower() == world.subscription_id
            and sent.get("clientState") == state and isinstance(tenant, str)
            and tenant.lower() == world.tenant_id.lower())


def check_change_verdicts(body, kinds, wrapped: bool, answer, taken, states: dict[str, str]) -> None:
    assert answer.status_code in (202, 400), answer.text
    if answer.status_code == 400:
        assert_json_error(answer)
        assert taken == []
        return
    if not wrapped:
        assert taken == []  # a generated body cannot carry a genuine clientState
        return
    worlds = {world.subscription_id: world for world, _, _ in kinds}
    for item in taken:
        world = worlds[item["subscription_id"]]
        assert {k: item[k] for k in ("integration_id", "asset_id", "subscription_id")} == owner(world)
        assert valid_graph_id(item["event_id"]) and ".." not in item["event_id"], item
        assert item["change_type"] and set(item["change_type"].split(",")) <= {"created", "updated", "deleted"}
        assert any(isinstance(sent, dict) and _sent_genuinely(sent, world, states[world.subscription_id])
                   for sent in body["value"]), item
    untouched = {(world.subscription_id, event_id) for world, event_id, changed in kinds if not changed}
    assert untouched <= {(item["subscription_id"], item["event_id"]) for item in taken}


@pytest.mark.timeout(300)
def test_generated_change_posts_queue_only_genuine_items_and_never_fail(host, pair, queues, graph_emulator):
    states = {world.subscription_id: client_state(graph_emulator, world) for world in pair}

    @settings(max_examples=20 * SCALE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(generated=change_post(graph_emulator, pair))
    def check(generated):
        body, kinds, wrapped = generated
        answer = post(host, CHANGE_PATH, body)
        check_change_verdicts(body, kinds, wrapped, answer, queued_items(queues["change"]), states)

    check()


@pytest.mark.timeout(300)
def test_generated_lifecycle_posts_queue_only_genuine_items_and_never_fail(host, pair, queues, graph_emulator):
    a, b = pair
    extra = [a.subscription_id, b.subscription_id, a.tenant_id, b.tenant_id, client_state(graph_emulator, b),
             "reauthorizationRequired", "subscriptionRemoved", "missed", "created"]

    @settings(max_examples=12 * SCALE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(world=st.sampled_from(pair), data=st.data())
    def check(world, data):
        item = lifecycle_item(graph_emulator, world)
        changed = data.draw(st.lists(st.sampled_from(sorted(item)), unique=True, max_size=3))
        for name in changed:
            if data.draw(st.booleans()):
                item.pop(name)
            else:
                item[name] = data.draw(hostile_value(extra))
        answer = post(host, LIFECYCLE_PATH, {"value": [item]})
        assert answer.status_code == 202, answer.text
        taken = queued_items(queues["lifecycle"])
        genuine = (_sent_genuinely(item, world, client_state(graph_emulator, world))
                   and item.get("lifecycleEvent") in ("reauthorizationRequired", "subscriptionRemoved", "missed"))
        expected = [{**owner(world), "lifecycle_event": item.get("lifecycleEvent")}] if genuine else []
        assert taken == expected
        assert queued_items(queues["change"]) == []

    check()


# ---- hand-made hostile posts ---------------------------------------------------------------

def _nested(depth: int) -> bytes:
    return b'{"value": ' + b"[" * depth + b"]" * depth + b"}"


MALFORMED = {
    "over one megabyte": lambda item: json.dumps({"value": [item], "pad": "x" * (1024 * 1024)}).encode(),
    "deeply nested arrays": lambda item: _nested(200_000),
    "deeply nested objects": lambda item: b'{"value": [' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"]}",
    "not JSON": lambda item: b"value=1&subscriptionId=x",
    "not UTF-8": lambda item: b'{"value": ["\xff\xfe"]}',
    "empty": lambda item: b"",
    "a JSON array": lambda item: json.dumps([item]).encode(),
    "value not a list": lambda item: json.dumps({"value": item}).encode(),
    "a JSON string": lambda item: b'"value"',
}


@pytest.mark.parametrize("path", [CHANGE_PATH, LIFECYCLE_PATH], ids=["change", "lifecycle"])
@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_malformed_posts_are_400_with_a_json_error_and_queue_nothing(host, pair, queues, graph_emulator, path, shape):
    genuine = change_item(graph_emulator, pair[0]) if path == CHANGE_PATH else lifecycle_item(graph_emulator, pair[0])
    answer = post(host, path, raw=MALFORMED[shape](genuine))
    assert answer.status_code == 400, answer.text[:300]
    assert_json_error(answer)
    assert queued_items(queues["change"]) == [] and queued_items(queues["lifecycle"]) == []


FORGERIES = {
    "the other tenant's subscription with this one's clientState":
        lambda a, b, g: change_item(g, b, clientState=client_state(g, a)),
    "the other tenant's subscription with a forged clientState":
        lambda a, b, g: change_item(g, b, clientState="forged-client-state"),
    "the other tenant's subscription and clientState with this tenant's id":
        lambda a, b, g: change_item(g, b, tenantId=a.tenant_id),
    "this subscription with the other tenant's id": lambda a, b, g: change_item(g, a, tenantId=b.tenant_id),
    "no tenant id, the other's organizationId": lambda a, b, g: {
        **{k: v for k, v in change_item(g, a).items() if k != "tenantId"}, "organizationId": b.tenant_id},
    "an unknown subscription": lambda a, b, g: change_item(g, a, subscriptionId=str(uuid.uuid4())),
    "the clientState's case changed": lambda a, b, g: change_item(g, a, clientState=client_state(g, a).swapcase()),
    "an empty clientState": lambda a, b, g: change_item(g, a, clientState=""),
    "a clientState of another type": lambda a, b, g: change_item(g, a, clientState=[client_state(g, a)]),
    "a lifecycle item": lambda a, b, g: lifecycle_item(g, a),
    "a change type that is not one": lambda a, b, g: change_item(g, a, changeType="missed"),
    "../ in the event id": lambda a, b, g: change_item(g, a, "AAMk/../subscriptions"),
    "only resourceData, climbing out": lambda a, b, g: {
        **{k: v for k, v in change_item(g, a).items() if k != "resource"}, "resourceData": {"id": "../../me"}},
    "only resourceData, two dots": lambda a, b, g: {
        **{k: v for k, v in change_item(g, a).items() if k != "resource"}, "resourceData": {"id": ".."}},
    "an encoded slash": lambda a, b, g: change_item(g, a, "AAMk%2F..%2Fx"),
    "a control character": lambda a, b, g: change_item(g, a, "AAMk\x00x"),
    "unicode in the id": lambda a, b, g: change_item(g, a, "AAMk\u202ex"),
    "resource and resourceData disagree": lambda a, b, g: change_item(g, a, "AAMkONE=", resourceData={"id": "AAMkTWO="}),
    "a resource outside events, no resourceData": lambda a, b, g: change_item(
        g, a, resource="Users/x/Messages/AAMk1=", resourceData=None),
    "a resource at another host, no resourceData": lambda a, b, g: change_item(
        g, a, resource="https://evil.example/users/x/events/A=", resourceData=None),
    "resourceData of another type": lambda a, b, g: change_item(g, a, resource=None, resourceData=["AAMk1="]),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_and_crossed_items_are_accepted_quietly_and_queue_nothing(host, pair, queues, graph_emulator, forgery):
    a, b = pair
    answer = post(host, CHANGE_PATH, {"value": [FORGERIES[forgery](a, b, graph_emulator)]})
    assert answer.status_code == 202, answer.text  # a forger learns nothing from the answer
    assert queued_items(queues["change"]) == [] and queued_items(queues["lifecycle"]) == []


def test_the_mailbox_a_resource_names_is_never_believed(host, pair, queues, graph_emulator):
    """Only the id is taken from a genuine item; the worker reads it in the subscription's own
    mailbox, whatever mailbox or host the resource string names."""
    a, b = pair
    item = change_item(graph_emulator, a, "AAMkC1=", resource=f"Users/{b.mailboxes[0]}/Events/AAMkC1=")
    assert post(host, CHANGE_PATH, {"value": [item]}).status_code == 202
    assert queued_items(queues["change"]) == [{**owner(a), "event_id": "AAMkC1=", "change_type": "updated"}]


@pytest.mark.parametrize("kind", [["missed"], {"missed": 1}, 1, None, "Missed"], ids=repr)
def test_a_lifecycle_event_of_another_type_is_refused_quietly(host, pair, queues, graph_emulator, kind):
    """Found by the fuzzer: a list or object here was looked up in a set and answered 500."""
    answer = post(host, LIFECYCLE_PATH, {"value": [lifecycle_item(graph_emulator, pair[0], lifecycleEvent=kind)]})
    assert answer.status_code == 202, answer.text
    assert queued_items(queues["lifecycle"]) == []


def test_a_change_item_in_the_lifecycle_url_queues_nothing(host, pair, queues, graph_emulator):
    answer = post(host, LIFECYCLE_PATH, {"value": [change_item(graph_emulator, pair[0])]})
    assert answer.status_code == 202, answer.text
    assert queued_items(queues["change"]) == [] and queued_items(queues["lifecycle"]) == []


def test_a_mixed_batch_routes_each_genuine_item_to_its_own_tenant(host, pair, queues, graph_emulator):
    a, b = pair
    body = {"value": [change_item(graph_emulator, a, "AAMkA1="), change_item(graph_emulator, b, "AAMkB1="),
                      change_item(graph_emulator, b, "AAMkB2=", clientState=client_state(graph_emulator, a)),
                      lifecycle_item(graph_emulator, a)]}
    answer = post(host, CHANGE_PATH, body)
    assert answer.status_code == 202, answer.text
    taken = queued_items(queues["change"])
    assert sorted((item["integration_id"], item["asset_id"], item["event_id"]) for item in taken) == sorted([
        (a.integration_id, a.asset["id"], "AAMkA1="), (b.integration_id, b.asset["id"], "AAMkB1=")])


TOKENS = ["plain", "with spaces and +plus+", "<script>alert(1)</script>", "ümlaut ✓ 🙂", "a&b=c?d#e",
          "%2F%25already-encoded", "line\nbreak\ttab", "\x00nul", "x" * 4096]


@pytest.mark.parametrize("path", [CHANGE_PATH, LIFECYCLE_PATH], ids=["change", "lifecycle"])
@pytest.mark.parametrize("token", TOKENS, ids=range(len(TOKENS)))
def test_validation_tokens_come_back_decoded_as_plain_text(host, path, token):
    answer = post(host, path, raw=b"", params=f"?validationToken={quote(token, safe='')}")
    assert answer.status_code == 200, answer.text[:200]
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.content.decode("utf-8") == token


@pytest.mark.parametrize("path", [CHANGE_PATH, LIFECYCLE_PATH], ids=["change", "lifecycle"])
def test_a_validation_token_over_the_limit_is_refused_with_a_json_error(host, path):
    """Found by the fuzz tests: this refusal was the only webhook answer in plain text."""
    answer = post(host, path, raw=b"", params=f"?validationToken={'x' * 4097}")
    assert answer.status_code == 400
    assert_json_error(answer)


# ---- replays -------------------------------------------------------------------------------

def test_a_replayed_notification_only_re_reads_and_never_books_twice(held, pair, queues, graph_emulator):
    host, app = held
    world = pair[0]
    person, room = world.room.tenant.users[1], world.mailboxes[0]
    start, end = utc_slot(6, 13)
    world.room.meeting(person.user_principal_name, subject="Replayed", start=start, end=end, rooms=[room])
    world.room.settle()
    delivered = [item for item in queued_items(queues["change"]) if item["integration_id"] == world.integration_id]
    assert delivered, "the emulator's notification of the meeting did not reach the webhook"
    worker = app.worker("room_change_worker")
    worker(queue_message({"items": delivered, "deferrals": 0}))

    def replayed_booking():
        found = [r for r in world.room.reservations(room) if r["subject"] == "Replayed"]
        return found if len(found) == 1 else None

    (first,) = wait_for(replayed_booking, timeout=20, interval=0.2, what="the reservation of the meeting")
    event_id = delivered[-1]["event_id"]
    for change in ("created", "updated", "updated"):
        answer = post(host, CHANGE_PATH, {"value": [change_item(graph_emulator, world, event_id, changeType=change)]})
        assert answer.status_code == 202, answer.text
        (again,) = queued_items(queues["change"])
        assert again == {**owner(world), "event_id": event_id, "change_type": change}
        worker(queue_message({"items": [again], "deferrals": 0}))
    after = [r for r in world.room.reservations(room) if r["subject"] == "Replayed"]
    assert len(after) == 1 and after[0]["id"] == first["id"]
    assert {k: after[0][k] for k in ("start", "end", "status", "asset_id")} == \
        {k: first[k] for k in ("start", "end", "status", "asset_id")}
    # The other tenant saw none of it.
    assert all(r["subject"] != "Replayed" for r in pair[1].room.reservations(pair[1].mailboxes[0]))
