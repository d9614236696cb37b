"""Which requests the Graph client sends again after a failure that may have been applied, and
what an unsafe one raises instead (OutcomeUnknown)."""
import pytest
import requests
from hypothesis import given, strategies as st

from graph.errors import Conflict, GraphError, OutcomeUnknown, Throttled
from graph.retry import is_retry_safe
from tests.unit.graph.fakes import FakeTokens, ScriptedSession, graph_error, make_client, response

DROPPED = requests.ConnectionError("('Connection aborted.', RemoteDisconnected('closed'))")


@pytest.mark.parametrize("method, headers, declared, expected", [
    ("GET", None, None, True),
    ("put", None, None, True),
    ("DELETE", None, None, True),
    ("PATCH", None, None, False),
    ("PATCH", {"if-match": 'W/"abc"'}, None, True),
    ("POST", None, None, False),
    ("POST", {"If-Match": "*"}, None, True),
    ("POST", None, True, True),
    ("GET", None, False, False),
])
def test_the_retry_safety_rule(method, headers, declared, expected):
    assert is_retry_safe(method, headers, declared) is expected


@pytest.mark.parametrize("status, code", [(503, "ServiceUnavailable"), (504, "GatewayTimeout"),
                                          (500, "InternalServerError"), (502, "BadGateway")])
def test_an_unsafe_post_answered_5xx_is_not_resent(status, code):
    session = ScriptedSession([graph_error(status, code, headers={"Retry-After": "7"}), response(201, {"id": "x"})])
    client, sleeper = make_client(session)
    with pytest.raises(OutcomeUnknown) as caught:
        client.post("/subscriptions", {"resource": "users"})
    unknown = caught.value
    assert len(session.sent) == 1 and sleeper.waits == []
    assert isinstance(unknown, GraphError) and not isinstance(unknown, Throttled)
    assert (unknown.method, unknown.path, unknown.status) == ("POST", "/v1.0/subscriptions", status)
    assert code in unknown.cause and unknown.retry_after == 7.0
    assert unknown.request_id == f"rid-{status}"


def test_a_patch_without_if_match_is_not_resent_but_with_if_match_it_is():
    session = ScriptedSession([graph_error(503, "ServiceUnavailable")])
    client, _ = make_client(session)
    with pytest.raises(OutcomeUnknown):
        client.patch("/users/a/events/e", {"subject": "s"})
    assert len(session.sent) == 1

    session = ScriptedSession([graph_error(503, "ServiceUnavailable"), response(200, {"id": "e"})])
    client, _ = make_client(session)
    assert client.patch("/users/a/events/e", {"subject": "s"}, headers={"If-Match": 'W/"1"'}).json() == {"id": "e"}
    assert len(session.sent) == 2


def test_a_put_and_a_delete_are_resent_after_a_dropped_connection():
    session = ScriptedSession([DROPPED, response(200, {"ok": 1}), DROPPED, response(204)])
    client, _ = make_client(session)
    assert client.request("PUT", "/x", json={}).json() == {"ok": 1}
    assert client.delete("/x").status == 204
    assert len(session.sent) == 4


def test_a_dropped_connection_after_sending_an_unsafe_post_is_outcome_unknown():
    session = ScriptedSession([DROPPED])
    client, _ = make_client(session)
    with pytest.raises(OutcomeUnknown) as caught:
        client.post("/users/a/events/e/decline", {"sendResponse": True})
    assert caught.value.status == 0 and "ConnectionError" in caught.value.cause
    assert caught.value.__suppress_context__  # the transport error may quote URLs


def test_429_is_resent_for_every_request():
    session = ScriptedSession([graph_error(429, "TooManyRequests", headers={"Retry-After": "1"}),
                               response(201, {"id": "s"})])
    client, sleeper = make_client(session)
    assert client.post("/subscriptions", {}).json() == {"id": "s"}
    assert sleeper.waits == [1.0] and len(session.sent) == 2


def test_an_unsafe_request_throttled_past_the_budget_is_throttled_not_unknown():
    session = ScriptedSession([graph_error(429, "TooManyRequests", headers={"Retry-After": "20"})])
    client, _ = make_client(session, max_retry_wait=5)
    with pytest.raises(Throttled) as caught:
        client.post("/subscriptions", {})
    assert not isinstance(caught.value, OutcomeUnknown)


def test_a_401_is_refreshed_and_resent_even_for_an_unsafe_post():
    tokens = FakeTokens()
    session = ScriptedSession([graph_error(401, "InvalidAuthenticationToken"), response(201, {"id": "s"})])
    client, _ = make_client(session, tokens=tokens)
    assert client.post("/subscriptions", {}).json() == {"id": "s"}


def test_a_4xx_of_an_unsafe_request_keeps_its_own_type():
    session = ScriptedSession([graph_error(409, "ErrorIrresolvableConflict")])
    client, _ = make_client(session)
    with pytest.raises(Conflict):
        client.post("/users/a/events", {})


def test_the_outcome_unknown_message_never_carries_the_token_or_query_values():
    session = ScriptedSession([graph_error(503, "ServiceUnavailable")])
    client, _ = make_client(session, tokens=FakeTokens(tokens=["secret-token-value"]))
    with pytest.raises(OutcomeUnknown) as caught:
        client.post("/users/a/events", {})
    assert "secret-token-value" not in str(caught.value) + repr(caught.value.__dict__)
    session = ScriptedSession([graph_error(503, "ServiceUnavailable")])
    client, _ = make_client(session)
    with pytest.raises(OutcomeUnknown) as caught:
        client.request("POST", "/users/a/events", params={"token": "query-secret"})
    assert caught.value.path == "/v1.0/users/a/events?token"
    assert "query-secret" not in str(caught.value)


@given(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST"]), st.booleans(), st.sampled_from([None, True, False]),
       st.sampled_from([503, 504, 500, 502, "timeout", "dropped"]))
def test_a_request_is_sent_twice_only_when_it_is_safe(method, if_match, declared, failure):
    """Whatever the failure that may have been applied, the second attempt happens exactly when
    the rule says so; otherwise the answer is OutcomeUnknown (or, for a safe 500/502, the error)."""
    first = {"timeout": requests.ReadTimeout("read timed out"), "dropped": DROPPED}.get(failure) \
        or graph_error(failure, "Failure")
    session = ScriptedSession([first, response(200, {"ok": 1})])
    client, _ = make_client(session)
    headers = {"If-Match": "*"} if if_match else None
    safe = is_retry_safe(method, headers, declared)
    try:
        client.request(method, "/x", json={} if method in ("POST", "PATCH", "PUT") else None, headers=headers,
                       retry_safe=declared)
    except OutcomeUnknown:
        outcome = "unknown"
    except GraphError:
        outcome = "error"
    else:
        outcome = "ok"
    if not safe:
        assert (outcome, len(session.sent)) == ("unknown", 1)
    elif failure in (500, 502):  # never retried, for any request: Graph's error is raised
        assert (outcome, len(session.sent)) == ("error", 1)
    else:
        assert (outcome, len(session.sent)) == ("ok", 2)
