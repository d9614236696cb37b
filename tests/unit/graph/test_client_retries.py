from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import urllib3

from graph.errors import (
    BadRequest, GraphError, NotFound, OutcomeUnknown, ServiceUnavailable, Throttled, Unauthorized,
)
from tests.unit.graph.fakes import API, FakeTokens, ScriptedSession, graph_error, make_client, response


def test_429_storm_is_ridden_out_honouring_retry_after():
    session = ScriptedSession([graph_error(429, "TooManyRequests", headers={"Retry-After": "2"})] * 3
                              + [response(200, {"id": "u1"})])
    client, sleeper = make_client(session, max_retry_wait=30)
    assert client.get("/users/u1") == {"id": "u1"}
    assert len(session.sent) == 4
    assert sleeper.waits == [2.0, 2.0, 2.0]


def test_storm_longer_than_the_budget_raises_throttled_with_retry_after():
    session = ScriptedSession([graph_error(429, "TooManyRequests", headers={"Retry-After": "4"})] * 10)
    client, sleeper = make_client(session, max_retry_wait=10)
    with pytest.raises(Throttled) as caught:
        client.get("/users")
    assert caught.value.retry_after == 4.0
    assert sleeper.waits == [4.0, 4.0]  # a third wait would pass the 10 s budget
    assert len(session.sent) == 3


def test_retry_after_as_http_date_uses_the_injected_clock():
    now = datetime(2024, 1, 1, 8, 0, tzinfo=timezone.utc)
    date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    session = ScriptedSession([graph_error(503, "ServiceUnavailable", headers={"Retry-After": date}),
                               response(200, {"ok": True})])
    client, sleeper = make_client(session, clock=lambda: now)
    client.get("/x")
    assert sleeper.waits == [7.0]


def test_503_and_504_without_retry_after_back_off_exponentially():
    session = ScriptedSession([graph_error(503, "ServiceUnavailable"), graph_error(504, "GatewayTimeout"),
                               graph_error(503, "ServiceUnavailable"), response(204)])
    client, sleeper = make_client(session)
    assert client.delete("/subscriptions/s").status == 204
    # Backoff(base=0.5, rng=0.5): 0.375, 0.75, 1.5
    assert sleeper.waits == [0.375, 0.75, 1.5]


def test_exhausted_503_is_a_service_unavailable_kind_of_throttled():
    session = ScriptedSession([graph_error(503, "ServiceUnavailable", headers={"Retry-After": "20"})])
    client, sleeper = make_client(session, max_retry_wait=5)
    with pytest.raises(ServiceUnavailable) as caught:
        client.get("/x")
    assert isinstance(caught.value, Throttled) and caught.value.retry_after == 20
    assert sleeper.waits == []


def test_non_retryable_errors_are_raised_at_once():
    session = ScriptedSession([graph_error(404, "ErrorItemNotFound")])
    client, sleeper = make_client(session)
    with pytest.raises(NotFound) as caught:
        client.get("/users/a/events/b")
    assert caught.value.request_id == "rid-404"
    assert sleeper.waits == [] and len(session.sent) == 1


def test_401_refreshes_the_token_once():
    tokens = FakeTokens()
    session = ScriptedSession([graph_error(401, "InvalidAuthenticationToken"), response(200, {"v": 1})])
    client, _ = make_client(session, tokens=tokens)
    assert client.get("/me") == {"v": 1}
    assert tokens.invalidated == ["token-1"]
    assert [s.headers["Authorization"] for s in session.sent] == ["Bearer token-1", "Bearer token-2"]


def test_second_401_is_unauthorized():
    tokens = FakeTokens()
    session = ScriptedSession([graph_error(401, "InvalidAuthenticationToken")] * 2)
    client, _ = make_client(session, tokens=tokens)
    with pytest.raises(Unauthorized):
        client.get("/me")
    assert tokens.invalidated == ["token-1"] and len(session.sent) == 2


def test_connection_errors_are_retried_then_give_up_with_retry_after():
    refused = requests.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.NewConnectionError(None, "refused")))
    session = ScriptedSession([refused, refused, response(200, {"ok": 1})])
    client, sleeper = make_client(session)
    assert client.post("/users/a/events", {"subject": "s"}).json() == {"ok": 1}
    assert len(sleeper.waits) == 2

    session = ScriptedSession([refused] * 20)
    client, sleeper = make_client(session, max_retry_wait=2)
    with pytest.raises(ServiceUnavailable) as caught:
        client.get("/x")
    assert caught.value.status == 0 and caught.value.retry_after > 0
    assert caught.value.__suppress_context__  # the transport error quotes URLs; never chained
    assert sleeper.total <= 2


def test_a_post_that_may_have_arrived_is_not_resent_unless_declared_safe():
    session = ScriptedSession([requests.ReadTimeout("read timed out")])
    client, _ = make_client(session)
    with pytest.raises(OutcomeUnknown) as caught:
        client.post("/users/a/events", {"subject": "s"})
    assert not isinstance(caught.value, Throttled)
    assert (caught.value.method, caught.value.path) == ("POST", "/v1.0/users/a/events")
    assert "ReadTimeout" in caught.value.cause
    assert len(session.sent) == 1

    session = ScriptedSession([requests.ReadTimeout("read timed out"), response(201, {"id": "e"})])
    client, _ = make_client(session)
    assert client.post("/users/a/events", {"subject": "s"}, retry_safe=True).json() == {"id": "e"}
    assert len(session.sent) == 2


def test_tls_failures_are_not_retried():
    session = ScriptedSession([requests.exceptions.SSLError("certificate verify failed")])
    client, sleeper = make_client(session)
    with pytest.raises(GraphError) as caught:
        client.get("/x")
    assert caught.value.code == "TlsError" and sleeper.waits == []


def test_client_request_id_is_sent_and_kept_across_retries():
    session = ScriptedSession([graph_error(429, "TooManyRequests", headers={"Retry-After": "0"}),
                               response(200, {})])
    client, _ = make_client(session)
    client.get("/x")
    ids = {s.headers["client-request-id"] for s in session.sent}
    assert len(ids) == 1 and len(ids.pop()) == 36


def test_retry_after_zero_still_waits_a_little():
    session = ScriptedSession([graph_error(429, "TooManyRequests", headers={"Retry-After": "0"}),
                               response(200, {})])
    client, sleeper = make_client(session)
    client.get("/x")
    assert sleeper.waits and sleeper.waits[0] > 0


def test_query_values_are_percent_encoded_with_spaces_as_20():
    session = ScriptedSession([response(200, {"value": []})])
    client, _ = make_client(session)
    client.get("/users/a/events", params={"$filter": "iCalUId eq 'a+b/c'", "$top": 5})
    url = session.sent[0].url
    assert "%20eq%20" in url and "+" not in url.split("?", 1)[1]
    assert session.sent[0].query["$filter"] == ["iCalUId eq 'a+b/c'"]


def test_links_to_other_hosts_are_refused():
    session = ScriptedSession([])
    client, _ = make_client(session)
    with pytest.raises(GraphError) as caught:
        client.get("https://evil.example/v1.0/users?$skiptoken=x")
    assert caught.value.code == "ForeignLink" and session.sent == []
    assert client.url(API + "/users?$skiptoken=x") == API + "/users?$skiptoken=x"


def test_bad_request_body_is_kept():
    session = ScriptedSession([graph_error(400, "BadRequest", "Invalid page size")])
    client, _ = make_client(session)
    with pytest.raises(BadRequest) as caught:
        client.get("/users", params={"$top": 1000})
    assert caught.value.message == "Invalid page size"
    assert caught.value.body["error"]["code"] == "BadRequest"
