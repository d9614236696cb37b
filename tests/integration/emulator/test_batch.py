"""JSON batching over HTTPS: limits and validation, dependsOn and 424, ids with `/`, per-item
429, at most 4 items in flight, responses matched by id."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests

from devtools.graph_emulator.state import new_outlook_id
from tests.support.emulator_fixture import graph_session
from tests.support.emulator_modules import (  # noqa: F401 - tenant is a fixture
    add_mailbox_probe, control, echoing_mailbox_probe, own_emulator, tenant,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with own_emulator(tmp_path_factory) as server:
        add_mailbox_probe(server, echoing_mailbox_probe)
        yield server


@pytest.fixture(autouse=True)
def default_settings(emulator):
    yield
    control(emulator, "DELETE", "/_control/faults")
    control(emulator, "PUT", "/_control/batch", json={"response_order": "shuffled"})


def get(item_id, user, item="x"):
    return {"id": item_id, "method": "GET", "url": f"/users/{user.id}/calendar/probe/{item}"}


def send(server, graph, requests_):
    return graph.post(f"{server.api_base}/$batch", json={"requests": requests_})


def by_id(answer):
    responses = answer.json()["responses"]
    assert len({r["id"] for r in responses}) == len(responses)
    return {r["id"]: r for r in responses}


def test_a_batch_of_twenty_is_answered_item_by_item(emulator, tenant):
    counts_before = dict(emulator.world.request_counts)
    items = [get(f"r{n}", tenant.users[n % 2], item=f"item-{n}") for n in range(20)]

    answer = send(emulator, tenant.session(), items)

    assert answer.status_code == 200
    responses = by_id(answer)
    assert set(responses) == {f"r{n}" for n in range(20)}
    for n in range(20):
        item = responses[f"r{n}"]
        assert item["status"] == 200
        assert item["body"]["item"] == f"item-{n}"
        assert item["body"]["mailbox"] == tenant.users[n % 2].id
        assert item["headers"]["Content-Type"].startswith("application/json")
    counts = emulator.world.request_counts
    assert counts["batch"] - counts_before.get("batch", 0) == 1
    assert counts["test.mailbox_probe"] - counts_before.get("test.mailbox_probe", 0) == 20


def test_twenty_one_requests_fail_the_whole_batch(emulator, tenant):
    answer = send(emulator, tenant.session(), [get(str(n), tenant.users[0]) for n in range(21)])

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert "exceeds the limit" in answer.json()["error"]["message"]


def test_ids_must_be_unique_ignoring_case(emulator, tenant):
    answer = send(emulator, tenant.session(), [get("a", tenant.users[0]), get("A", tenant.users[1])])

    assert answer.status_code == 400


@pytest.mark.parametrize("item", [
    {"id": "1", "method": "POST", "url": "/users/u/calendar/probe/x", "body": {"a": 1}},
    {"id": "1", "method": "POST", "url": "/users/u/calendar/probe/x", "headers": {"Content-Type": "application/json"}},
    {"id": "1", "method": "GET"},
    {"method": "GET", "url": "/users/u/calendar/probe/x"},
])
def test_malformed_items_fail_the_whole_batch(emulator, tenant, item):
    assert send(emulator, tenant.session(), [item]).status_code == 400


def test_an_empty_or_shapeless_batch_is_rejected(emulator, tenant):
    graph = tenant.session()
    assert send(emulator, graph, []).status_code == 400
    assert graph.post(f"{emulator.api_base}/$batch", json={"value": []}).status_code == 400


def test_a_write_carries_its_body_and_headers(emulator, tenant):
    item = {"id": "w", "method": "POST", "url": f"/users/{tenant.users[0].id}/calendar/probe/new",
            "headers": {"Content-Type": "application/json"}, "body": {"subject": "Planning"}}

    answer = send(emulator, tenant.session(), [item])

    response = by_id(answer)["w"]
    assert response["status"] == 201
    assert response["body"]["received"] == {"subject": "Planning"}


def test_ids_with_slashes_route_when_percent_encoded(emulator, tenant):
    outlook_ids = [new_outlook_id() + "/x+y=" for _ in range(3)]
    items = [{"id": str(n), "method": "GET",
              "url": f"/users/{tenant.users[0].id}/calendar/probe/{quote(oid, safe='')}?$select=subject"}
             for n, oid in enumerate(outlook_ids)]

    responses = by_id(send(emulator, tenant.session(), items))

    for n, oid in enumerate(outlook_ids):
        assert responses[str(n)]["status"] == 200
        assert responses[str(n)]["body"]["item"] == oid
        assert responses[str(n)]["body"]["query"] == {"$select": "subject"}


def test_a_failed_head_fails_its_dependents_with_424(emulator, tenant):
    user = tenant.users[0]
    items = [{"id": "1", "method": "GET", "url": "/users/nobody@nowhere.example/calendar/probe/x"},
             {**get("2", user), "dependsOn": ["1"]},
             {**get("3", user), "dependsOn": ["2"]}]

    answer = send(emulator, tenant.session(), items)

    assert answer.status_code == 200
    responses = by_id(answer)
    assert responses["1"]["status"] == 404
    assert responses["2"]["status"] == 424
    assert responses["3"]["status"] == 424
    assert "error" in responses["2"]["body"]


def test_a_successful_chain_runs_in_order(emulator, tenant):
    user = tenant.users[0]
    items = [get("1", user, "a"), {**get("2", user, "b"), "dependsOn": ["1"]},
             {**get("3", user, "c"), "dependsOn": ["1"]}]

    responses = by_id(send(emulator, tenant.session(), items))

    assert [responses[i]["status"] for i in "123"] == [200, 200, 200]


def test_a_mixed_batch_is_rejected(emulator, tenant):
    user = tenant.users[0]
    items = [get("1", user), get("2", user), {**get("3", user), "dependsOn": ["1"]}]

    answer = send(emulator, tenant.session(), items)

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Batch should be either fully sequential or fully parallel."


def test_a_dependency_must_name_an_earlier_request(emulator, tenant):
    user = tenant.users[0]
    items = [{**get("1", user), "dependsOn": ["2"]}, {**get("2", user), "dependsOn": ["1"]}]

    assert send(emulator, tenant.session(), items).status_code == 400


def test_an_absolute_url_fails_only_its_item(emulator, tenant):
    items = [get("ok", tenant.users[0]),
             {"id": "abs", "method": "GET", "url": f"https://graph.microsoft.com/v1.0/users/{tenant.users[0].id}"}]

    responses = by_id(send(emulator, tenant.session(), items))

    assert responses["ok"]["status"] == 200
    assert responses["abs"]["status"] == 400


def test_items_use_the_batch_token_not_their_own(emulator, tenant):
    item = {**get("1", tenant.users[0]), "headers": {"Authorization": "Bearer not-a-token"}}

    assert by_id(send(emulator, tenant.session(), [item]))["1"]["status"] == 200


def test_a_batch_without_a_token_is_unauthorized(emulator, tenant):
    answer = graph_session(emulator.ca_path).post(f"{emulator.api_base}/$batch",
                                                  json={"requests": [get("1", tenant.users[0])]})

    assert answer.status_code == 401


def test_a_throttled_item_gets_its_own_429_while_the_batch_succeeds(emulator, tenant):
    control(emulator, "PUT", f"/_control/throttling/tenants/{tenant.tenant_id}", json={"mailbox_requests": 2})
    busy, other = tenant.users
    items = [get(f"busy{n}", busy, f"i{n}") for n in range(4)] + [get("other", other)]

    answer = send(emulator, tenant.session(), items)

    assert answer.status_code == 200
    responses = by_id(answer)
    busy_statuses = sorted(responses[f"busy{n}"]["status"] for n in range(4))
    assert busy_statuses == [200, 200, 429, 429]
    for response in responses.values():
        if response["status"] == 429:
            assert float(response["headers"]["Retry-After"]) > 0
            assert response["body"]["error"]["code"] == "TooManyRequests"
    assert responses["other"]["status"] == 200


def test_at_most_four_items_are_in_flight_at_once(emulator, tenant):
    user = tenant.users[0]
    control(emulator, "POST", "/_control/faults",
            json={"path": f"/users/{user.id}/calendar/probe/slow", "delay_ms": 250})
    items = [get(str(n), user, "slow") for n in range(8)]

    started = time.monotonic()
    answer = send(emulator, tenant.session(), items)
    elapsed = time.monotonic() - started

    assert [r["status"] for r in answer.json()["responses"]] == [200] * 8
    stats = control(emulator, "GET", "/_control/throttling/stats",
                    params={"tenant": tenant.tenant_id, "mailbox": user.id}).json()["mailboxes"][0]
    assert stats["max_concurrency"] == 4
    assert stats["throttled_concurrency"] == 0
    assert elapsed >= 2 * 0.25  # eight slow items, four at a time


def test_faults_apply_to_inner_requests(emulator, tenant):
    control(emulator, "POST", "/_control/faults",
            json={"path": "/calendar/probe/flaky$", "status": 503, "retry_after": 4, "count": 1})
    items = [get("flaky", tenant.users[0], "flaky"), get("fine", tenant.users[0], "fine")]

    responses = by_id(send(emulator, tenant.session(), items))

    assert responses["flaky"]["status"] == 503
    assert responses["flaky"]["headers"]["Retry-After"] == "4"
    assert responses["fine"]["status"] == 200


def test_a_dropped_inner_request_drops_the_batch_connection(emulator, tenant):
    control(emulator, "POST", "/_control/faults",
            json={"path": "/calendar/probe/gone$", "drop_connection": True, "count": 1})

    with pytest.raises(requests.ConnectionError):
        send(emulator, tenant.session(), [get("1", tenant.users[0], "gone")])


def test_responses_do_not_come_back_in_request_order_by_default(emulator, tenant):
    items = [get(str(n), tenant.users[0]) for n in range(6)]
    graph = tenant.session()

    shuffled = [r["id"] for r in send(emulator, graph, items).json()["responses"]]
    control(emulator, "PUT", "/_control/batch", json={"response_order": "request"})
    ordered = [r["id"] for r in send(emulator, graph, items).json()["responses"]]

    assert sorted(shuffled) == sorted(ordered) == [str(n) for n in range(6)]
    assert shuffled != ordered
    assert ordered == [str(n) for n in range(6)]
