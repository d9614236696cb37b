"""Fault injection: error statuses with Graph's bodies, slow answers, dropped connections, and
faults on the Entra token endpoint as MSAL sees them."""
from __future__ import annotations

import time

import msal
import pytest
import requests

from tests.support.emulator_fixture import GRAPH_SCOPE, new_tenant
from tests.support.emulator_modules import (  # noqa: F401 - tenant is a fixture
    add_mailbox_probe, control, own_emulator, tenant,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with own_emulator(tmp_path_factory) as server:
        add_mailbox_probe(server)
        yield server


@pytest.fixture(autouse=True)
def no_faults_left(emulator):
    yield
    control(emulator, "DELETE", "/_control/faults")


def add_fault(server, **rule):
    response = control(server, "POST", "/_control/faults", json=rule)
    assert response.status_code == 201, response.text
    return response.json()


def probe_url(server, user, item="x"):
    return f"{server.api_base}/users/{user.id}/calendar/probe/{item}"


def test_a_503_fault_fires_count_times_then_requests_succeed(emulator, tenant):
    rule = add_fault(emulator, path="/calendar/probe/", status=503, retry_after=3, count=2)
    graph = tenant.session()

    answers = [graph.get(probe_url(emulator, tenant.users[0])) for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 200]
    for failed in answers[:2]:
        assert failed.headers["Retry-After"] == "3"
        error = failed.json()["error"]
        assert error["code"] == "ServiceUnavailable"
        assert error["innerError"]["request-id"] == failed.headers["request-id"]
    listed = control(emulator, "GET", f"/_control/faults/{rule['id']}").json()
    assert (listed["hits"], listed["remaining"], listed["expired"]) == (2, 0, True)


def test_a_429_fault_carries_graphs_throttling_body_and_retry_after(emulator, tenant):
    add_fault(emulator, path="/calendar/probe/", status=429, retry_after=7, count=1)

    answer = tenant.session().get(probe_url(emulator, tenant.users[0]))

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    error = answer.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["innerError"]["code"] == "429"
    assert error["innerError"]["status"] == "429"


def test_a_429_fault_sends_retry_after_unless_told_not_to(emulator, tenant):
    add_fault(emulator, path="/probe/default", status=429, count=1)
    add_fault(emulator, path="/probe/bare", status=429, retry_after=None, count=1)
    graph = tenant.session()

    with_default = graph.get(probe_url(emulator, tenant.users[0], "default"))
    without = graph.get(probe_url(emulator, tenant.users[0], "bare"))

    assert with_default.status_code == without.status_code == 429
    assert int(with_default.headers["Retry-After"]) >= 1
    assert "Retry-After" not in without.headers


def test_a_fault_body_overrides_code_and_message(emulator, tenant):
    add_fault(emulator, path="/probe/", status=404, count=1,
              body={"code": "MailboxNotEnabledForRESTAPI", "message": "The mailbox is either inactive."})

    answer = tenant.session().get(probe_url(emulator, tenant.users[0]))

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    assert answer.json()["error"]["message"] == "The mailbox is either inactive."


def test_a_slow_answer_is_delayed_and_then_processed(emulator, tenant):
    add_fault(emulator, path="/probe/slow", delay_ms=400, count=1)
    graph = tenant.session()

    started = time.monotonic()
    slow = graph.get(probe_url(emulator, tenant.users[0], "slow"))
    slow_elapsed = time.monotonic() - started
    started = time.monotonic()
    fast = graph.get(probe_url(emulator, tenant.users[0], "slow"))
    fast_elapsed = time.monotonic() - started

    assert slow.status_code == fast.status_code == 200
    assert slow.json()["item"] == "slow"
    assert slow_elapsed >= 0.4
    assert fast_elapsed < slow_elapsed


def test_a_slow_gateway_timeout_waits_then_fails(emulator, tenant):
    add_fault(emulator, path="/probe/", status=504, delay_ms=300, count=1)

    started = time.monotonic()
    answer = tenant.session().get(probe_url(emulator, tenant.users[0]))

    assert time.monotonic() - started >= 0.3
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "GatewayTimeout"


def test_a_dropped_connection_reaches_the_client_as_a_connection_error(emulator, tenant):
    rule = add_fault(emulator, path="/probe/", drop_connection=True, count=1)
    graph = tenant.session()

    with pytest.raises(requests.ConnectionError):
        graph.get(probe_url(emulator, tenant.users[0]))
    after = graph.get(probe_url(emulator, tenant.users[0]))

    assert after.status_code == 200
    assert control(emulator, "GET", f"/_control/faults/{rule['id']}").json()["hits"] == 1


def test_faults_can_be_limited_to_a_method(emulator, tenant):
    add_fault(emulator, method="POST", path="/probe/", status=500)
    graph = tenant.session()

    read = graph.get(probe_url(emulator, tenant.users[0]))
    write = graph.post(probe_url(emulator, tenant.users[0]), json={})

    assert read.status_code == 200
    assert write.status_code == 500
    assert write.json()["error"]["code"] == "InternalServerError"


def test_faults_can_be_limited_to_a_tenant(emulator, tenant):
    other = new_tenant(emulator, users=1)
    add_fault(emulator, path="/probe/", status=503, tenant=tenant.domain)

    mine = tenant.session().get(probe_url(emulator, tenant.users[0]))
    theirs = other.session().get(probe_url(emulator, other.users[0]))

    assert mine.status_code == 503
    assert theirs.status_code == 200


def test_glob_paths_match_the_whole_path(emulator, tenant):
    add_fault(emulator, path="/v1.0/users/*/calendar/probe/glob", match="glob", status=502)
    graph = tenant.session()

    hit = graph.get(probe_url(emulator, tenant.users[0], "glob"))
    miss = graph.get(probe_url(emulator, tenant.users[0], "globe"))

    assert (hit.status_code, miss.status_code) == (502, 200)


def test_seeded_probability_gives_a_repeatable_mix_of_failures(emulator, tenant):
    graph = tenant.session()

    def run():
        rule = add_fault(emulator, path="/probe/", status=503, probability=0.5, seed=11)
        statuses = [graph.get(probe_url(emulator, tenant.users[0])).status_code for _ in range(24)]
        hits = control(emulator, "GET", f"/_control/faults/{rule['id']}").json()["hits"]
        control(emulator, "DELETE", f"/_control/faults/{rule['id']}")
        return statuses, hits

    first, first_hits = run()
    second, _ = run()

    assert first == second
    assert first.count(503) == first_hits
    assert 0 < first_hits < 24
    assert set(first) == {200, 503}


def test_the_control_api_is_never_faulted(emulator):
    add_fault(emulator, path=".*", status=500)

    assert control(emulator, "GET", "/_control/faults").status_code == 200
    assert control(emulator, "DELETE", "/_control/faults").status_code == 204
    assert control(emulator, "GET", "/_control/faults").json() == {"value": []}


@pytest.mark.parametrize("rule", [
    {"path": "/x", "status": 503, "drop_connection": True},
    {"path": "/x"},
    {"path": "(unclosed", "status": 500},
    {"path": "/x", "status": 503, "count": 0},
    {"path": "/x", "status": 503, "probability": 1.5},
    {"path": "/x", "status": 503, "colour": "red"},
    {"path": "/x", "status": 503, "match": "fuzzy"},
])
def test_ambiguous_fault_rules_are_rejected(emulator, rule):
    assert control(emulator, "POST", "/_control/faults", json=rule).status_code == 400


def test_rules_can_be_removed_one_by_one(emulator):
    keep = add_fault(emulator, path="/keep", status=500)
    drop = add_fault(emulator, path="/drop", status=500)

    assert control(emulator, "DELETE", f"/_control/faults/{drop['id']}").status_code == 204
    assert control(emulator, "DELETE", f"/_control/faults/{drop['id']}").status_code == 404
    assert [r["id"] for r in control(emulator, "GET", "/_control/faults").json()["value"]] == [keep["id"]]


# ---- the token endpoint, seen through MSAL -------------------------------------------------------

def test_a_5xx_from_the_token_endpoint_raises_msal_service_error(emulator, tenant):
    rule = add_fault(emulator, path="/oauth2/v2.0/token$", status=503, count=1)

    with pytest.raises(msal.exceptions.MsalServiceError):
        tenant.msal_app().acquire_token_for_client([GRAPH_SCOPE])
    recovered = tenant.msal_app().acquire_token_for_client([GRAPH_SCOPE])

    assert "access_token" in recovered
    assert control(emulator, "GET", f"/_control/faults/{rule['id']}").json()["hits"] == 1


def test_a_429_from_the_token_endpoint_comes_back_as_an_oauth_error(emulator, tenant):
    add_fault(emulator, path="/oauth2/v2.0/token$", status=429, retry_after=2, count=1)

    result = tenant.msal_app().acquire_token_for_client([GRAPH_SCOPE])

    assert "access_token" not in result
    assert result["error"] == "temporarily_unavailable"


def test_a_dropped_token_request_surfaces_as_a_connection_error(emulator, tenant):
    add_fault(emulator, path="/oauth2/v2.0/token$", drop_connection=True, count=1)

    with pytest.raises(requests.ConnectionError):
        tenant.msal_app().acquire_token_for_client([GRAPH_SCOPE])


def test_a_5xx_from_tenant_discovery_fails_msal_construction(emulator, tenant):
    add_fault(emulator, path="/.well-known/openid-configuration", status=500, count=1)

    with pytest.raises(msal.exceptions.MsalServiceError):  # a 4xx would be a ValueError
        tenant.msal_app()
    assert "access_token" in tenant.msal_app().acquire_token_for_client([GRAPH_SCOPE])
