from collections import Counter

import requests

import pytest
from hypothesis import given, settings, strategies as st

from graph.batch import (
    MAX_BATCH_SIZE, BatchRequest, assign_ids, chains, outlook_mailbox, plan_chunks, run_batch,
)
from graph.concurrency import MailboxLimiter
from graph.errors import FailedDependency, NotFound, OutcomeUnknown, ServiceUnavailable, Throttled
from tests.unit.graph.fakes import ScriptedSession, make_client, response


class FakeBatchEndpoint:
    """Answers POST /$batch like Graph: per-item status, 424 for failed dependencies,
    responses in reverse order (Graph promises no order)."""

    def __init__(self, answer):
        self.answer = answer  # (item dict, attempt number of that url) -> (status, headers, body)
        self.attempts = Counter()
        self.batches = []

    def __call__(self, sent):
        assert sent.method == "POST" and sent.path.endswith("/$batch")
        items = sent.json["requests"]
        assert len(items) <= MAX_BATCH_SIZE
        self.batches.append(items)
        status_of = {}
        responses = []
        for item in items:
            depends = item.get("dependsOn")
            if depends and status_of.get(depends[0].lower(), 200) >= 400:
                status, headers, body = 424, {}, {"error": {"code": "FailedDependency", "message": "dep"}}
            else:
                self.attempts[item["url"]] += 1
                status, headers, body = self.answer(item, self.attempts[item["url"]])
            status_of[item["id"].lower()] = status
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        return response(200, {"responses": list(reversed(responses))})


def _ok(item, attempt):
    return 200, {"Content-Type": "application/json"}, {"url": item["url"]}


def test_45_requests_go_in_3_batches_and_come_back_in_request_order():
    endpoint = FakeBatchEndpoint(_ok)
    client, _ = make_client(ScriptedSession(handler=endpoint))
    requests_ = [BatchRequest("GET", f"/users/u{i}") for i in range(45)]
    results = run_batch(client, requests_)
    assert [len(b) for b in endpoint.batches] == [20, 20, 5]
    assert [r.body["url"] for r in results] == [f"/users/u{i}" for i in range(45)]
    assert all(r.ok and r.status == 200 for r in results)


def test_throttled_items_are_retried_after_the_longest_retry_after():
    throttled = {"/users/u3": 3, "/users/u17": 2, "/users/u40": 1}  # url -> times throttled

    def answer(item, attempt):
        if attempt <= throttled.get(item["url"], 0):
            wait = "5" if item["url"] == "/users/u17" else "1"
            return 429, {"Retry-After": wait}, {"error": {"code": "TooManyRequests", "message": "later"}}
        return _ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    client, sleeper = make_client(ScriptedSession(handler=endpoint), max_retry_wait=60)
    results = run_batch(client, [BatchRequest("GET", f"/users/u{i}") for i in range(45)])
    assert all(r.ok for r in results)
    assert sleeper.waits == [5.0, 5.0, 1.0]  # longest Retry-After of the items still throttled
    assert [len(b) for b in endpoint.batches] == [20, 20, 5, 3, 2, 1]
    assert endpoint.attempts["/users/u3"] == 4 and endpoint.attempts["/users/u17"] == 3 and endpoint.attempts["/users/u0"] == 1


def test_items_still_throttled_when_the_budget_is_spent_carry_retry_after():
    def answer(item, attempt):
        if item["url"] == "/users/u1":
            return 429, {"Retry-After": "8"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        return _ok(item, attempt)

    client, sleeper = make_client(ScriptedSession(handler=FakeBatchEndpoint(answer)), max_retry_wait=10)
    results = run_batch(client, [BatchRequest("GET", f"/users/u{i}") for i in range(3)])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, Throttled) and results[1].error.retry_after == 8
    assert sleeper.waits == [8.0]
    with pytest.raises(Throttled):
        results[1].value()


def test_dependents_of_a_throttled_item_are_retried_with_it():
    def answer(item, attempt):
        if item["url"] == "/a" and attempt == 1:
            return 429, {"Retry-After": "1"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        if item["url"] == "/missing":
            return 404, {}, {"error": {"code": "ErrorItemNotFound", "message": "gone"}}
        return _ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    client, _ = make_client(ScriptedSession(handler=endpoint))
    results = run_batch(client, [
        BatchRequest("POST", "/a", body={"x": 1}, id="a"),
        BatchRequest("GET", "/b", depends_on="a", id="b"),
        BatchRequest("GET", "/missing", id="m"),
        BatchRequest("GET", "/after-missing", depends_on="m", id="n"),
    ])
    assert [r.id for r in results] == ["a", "b", "m", "n"]
    assert results[0].ok and results[1].ok
    assert isinstance(results[2].error, NotFound)
    assert isinstance(results[3].error, FailedDependency)
    assert [[i["id"] for i in b] for b in endpoint.batches] == [["a", "b"], ["m", "n"], ["a", "b"]]
    second_round = endpoint.batches[2]
    assert second_round[1]["dependsOn"] == ["a"]
    assert endpoint.batches[0][0]["headers"]["Content-Type"] == "application/json"


def test_a_dependency_that_already_succeeded_is_not_resent():
    def answer(item, attempt):
        if item["url"] == "/b" and attempt == 1:
            return 429, {"Retry-After": "1"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        return _ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    client, _ = make_client(ScriptedSession(handler=endpoint))
    results = run_batch(client, [BatchRequest("GET", "/a", id="a"), BatchRequest("GET", "/b", depends_on="a", id="b")])
    assert all(r.ok for r in results)
    assert endpoint.batches[1] == [{"id": "b", "method": "GET", "url": "/b"}]


def test_ids_must_be_unique_case_insensitively_and_dependencies_known():
    with pytest.raises(ValueError):
        assign_ids([BatchRequest("GET", "/a", id="X"), BatchRequest("GET", "/b", id="x")])
    with pytest.raises(ValueError):
        assign_ids([BatchRequest("GET", "/a", depends_on="nope")])
    with pytest.raises(ValueError):
        assign_ids([BatchRequest("GET", "/a", id="a", depends_on="b"), BatchRequest("GET", "/b", id="b")])


def test_chains_travel_alone_and_independent_requests_share_batches():
    requests_ = [BatchRequest("GET", f"/{i}", id=str(i)) for i in range(25)]
    requests_[3] = BatchRequest("GET", "/3", id="3", depends_on="1")
    requests_[24] = BatchRequest("GET", "/24", id="24", depends_on="3")
    chunks = plan_chunks(chains(assign_ids(requests_), requests_))
    assert [1, 3, 24] in chunks
    assert sorted(len(c) for c in chunks) == [2, 3, 20]


def test_a_chain_longer_than_a_batch_is_refused():
    requests_ = [BatchRequest("GET", "/0", id="0")] + [
        BatchRequest("GET", f"/{i}", id=str(i), depends_on=str(i - 1)) for i in range(1, 21)]
    with pytest.raises(ValueError):
        plan_chunks(chains(assign_ids(requests_), requests_))


@st.composite
def dependency_lists(draw):
    size = draw(st.integers(min_value=1, max_value=70))
    requests_ = []
    for i in range(size):
        depends = None
        if i and draw(st.booleans()):
            candidate = draw(st.integers(min_value=max(0, i - 6), max_value=i - 1))
            depends = str(candidate)
        requests_.append(BatchRequest("GET", f"/{i}", id=str(i), depends_on=depends))
    return requests_


@settings(max_examples=200, deadline=None)
@given(dependency_lists())
def test_chunks_cover_every_request_once_and_never_split_a_chain(requests_):
    ids = assign_ids(requests_)
    groups = chains(ids, requests_)
    if any(len(g) > MAX_BATCH_SIZE for g in groups):
        return
    chunks = plan_chunks(groups)
    flat = [i for chunk in chunks for i in chunk]
    assert sorted(flat) == list(range(len(requests_)))
    assert all(len(chunk) <= MAX_BATCH_SIZE for chunk in chunks)
    chunk_of = {i: n for n, chunk in enumerate(chunks) for i in chunk}
    for i, request in enumerate(requests_):
        if request.depends_on is not None:
            assert chunk_of[i] == chunk_of[int(request.depends_on)]
    assert all(chunk == sorted(chunk) for chunk in chunks)
    for chunk in chunks:
        # Graph's rule: fully parallel, or sequential (everything after the first depends on
        # an earlier member).
        dependent = [requests_[i].depends_on is not None for i in chunk]
        assert not any(dependent) or (not dependent[0] and all(dependent[1:]))


@pytest.mark.parametrize("url, mailbox", [
    ("/users/room%40contoso.com/events/AAMk%2Fx%3D", "room@contoso.com"),
    ("/users/abc/calendarView?startDateTime=x", "abc"),
    ("/users/abc/calendar/events", "abc"),
    ("/users/abc", None),
    ("/users/abc/memberOf", None),
    ("/subscriptions", None),
])
def test_outlook_mailbox_of_a_batch_item(url, mailbox):
    assert outlook_mailbox(url) == mailbox


def test_batch_items_hold_mailbox_slots_per_chain_while_on_the_wire():
    limiter = MailboxLimiter(limit=4)
    seen = []
    client_holder = {}

    def handler(sent):
        client = client_holder["client"]
        seen.append((limiter.in_flight(client.mailbox_key("room@x.com")),
                     limiter.in_flight(client.mailbox_key("other@x.com"))))
        return FakeBatchEndpoint(_ok)(sent)

    client, _ = make_client(ScriptedSession(handler=handler), limiter=limiter)
    client_holder["client"] = client
    requests_ = [BatchRequest("GET", f"/users/room@x.com/events/{i}") for i in range(6)]
    requests_ += [BatchRequest("GET", "/users/other@x.com/events/a", id="c1"),
                  BatchRequest("GET", "/users/other@x.com/events/b", id="c2", depends_on="c1")]
    run_batch(client, requests_)
    assert seen == [(4, 0), (0, 1)]  # six parallel room items, then the chain on its own
    assert limiter.in_flight(client.mailbox_key("room@x.com")) == 0


def test_dependents_of_items_still_throttled_are_reported_as_throttled():
    def answer(item, attempt):
        if item["url"] == "/a":
            return 429, {"Retry-After": "30"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        return _ok(item, attempt)

    client, sleeper = make_client(ScriptedSession(handler=FakeBatchEndpoint(answer)), max_retry_wait=5)
    results = run_batch(client, [BatchRequest("GET", "/a", id="a"), BatchRequest("GET", "/b", id="b", depends_on="a")])
    assert sleeper.waits == []
    assert [type(r.error) for r in results] == [Throttled, Throttled]
    assert [r.error.retry_after for r in results] == [30, 30]
    assert results[1].status == 424


# ---- retry safety ------------------------------------------------------------------------------

def _unavailable(item, attempt):
    return 503, {}, {"error": {"code": "ServiceUnavailable", "message": "later"}}


def test_an_item_answered_503_is_resent_only_when_safe():
    def answer(item, attempt):
        if attempt == 1 and item["url"] in ("/users/a/events", "/users/u1", "/users/b/events"):
            return _unavailable(item, attempt)
        return _ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    client, _ = make_client(ScriptedSession(handler=endpoint))
    results = run_batch(client, [
        BatchRequest("POST", "/users/a/events", body={"subject": "s"}),
        BatchRequest("GET", "/users/u1"),
        BatchRequest("POST", "/users/b/events", body={"transactionId": "t"}, retry_safe=True),
    ])
    assert isinstance(results[0].error, OutcomeUnknown)
    assert (results[0].error.method, results[0].error.path, results[0].error.status) == ("POST", "/users/a/events", 503)
    assert results[1].ok and results[2].ok
    assert endpoint.attempts == Counter({"/users/a/events": 1, "/users/u1": 2, "/users/b/events": 2})


def test_a_throttled_unsafe_item_is_still_resent():
    def answer(item, attempt):
        if attempt == 1:
            return 429, {"Retry-After": "1"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        return _ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    client, _ = make_client(ScriptedSession(handler=endpoint))
    results = run_batch(client, [BatchRequest("POST", "/subscriptions", body={})])
    assert results[0].ok and endpoint.attempts["/subscriptions"] == 2


def test_a_whole_batch_answered_503_is_resent_only_if_every_item_is_safe():
    answers = [response(503, {"error": {"code": "ServiceUnavailable", "message": "later"}})]
    endpoint = FakeBatchEndpoint(_ok)

    def flaky(sent):
        return answers.pop(0) if answers else endpoint(sent)

    client, _ = make_client(ScriptedSession(handler=flaky))
    safe = run_batch(client, [BatchRequest("GET", "/users/u1"), BatchRequest("DELETE", "/subscriptions/s")])
    assert all(r.ok for r in safe) and len(endpoint.batches) == 1

    answers.append(response(503, {"error": {"code": "ServiceUnavailable", "message": "later"}}))
    session = ScriptedSession(handler=flaky)
    client, _ = make_client(session)
    mixed = run_batch(client, [BatchRequest("GET", "/users/u1"), BatchRequest("POST", "/subscriptions", body={})])
    # The batch is not sent again; its safe item goes again alone, in the next round.
    assert [[item["url"] for item in sent.json["requests"]] for sent in session.sent] == [
        ["/users/u1", "/subscriptions"], ["/users/u1"]]
    assert isinstance(mixed[1].error, OutcomeUnknown) and mixed[1].error.path == "/subscriptions"
    assert mixed[0].ok


def test_safe_items_of_an_unanswered_batch_are_unavailable_when_no_budget_is_left():
    session = ScriptedSession([requests.ReadTimeout("read timed out")])
    client, _ = make_client(session, max_retry_wait=0)
    results = run_batch(client, [BatchRequest("GET", "/users/u1"), BatchRequest("POST", "/users/a/events", body={})])
    assert len(session.sent) == 1
    assert isinstance(results[0].error, ServiceUnavailable) and not isinstance(results[0].error, OutcomeUnknown)
    assert isinstance(results[1].error, OutcomeUnknown) and "ReadTimeout" in results[1].error.cause

    session = ScriptedSession([requests.ReadTimeout("read timed out"), response(200, {"responses": [
        {"id": "1", "status": 200, "body": {"id": "u1"}}]})])
    client, _ = make_client(session)
    results = run_batch(client, [BatchRequest("GET", "/users/u1"), BatchRequest("POST", "/users/a/events", body={})])
    assert results[0].ok and isinstance(results[1].error, OutcomeUnknown)
    assert [len(sent.json["requests"]) for sent in session.sent] == [2, 1]
