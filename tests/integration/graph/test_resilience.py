"""Retries, paging, delta and $batch against the emulator's injected faults (HTTPS, real MSAL)."""
import uuid

import pytest

from graph import users
from graph.batch import BatchRequest, run_batch
from graph.errors import DeltaExpired, NotFound, ServiceUnavailable, Throttled
from tests.integration.graph.support import graph_env  # noqa: F401  (module fixture)
from tests.support.recording_sleeper import RecordingSleeper


@pytest.fixture
def tenant(graph_env):
    graph_env.control.clear_faults()
    return graph_env.tenant(users=7)


def _users_path_rule(tenant, **rule):
    return dict(method="GET", path=r"/v1\.0/users$", tenant=tenant.tenant_id, **rule)


def test_a_429_storm_is_ridden_out_honouring_retry_after(graph_env, tenant):
    rule = graph_env.control.add_fault(**_users_path_rule(tenant, status=429, retry_after=1, count=4))
    counts = graph_env.server.world.request_counts
    before = counts["users.list"]
    sleeper = RecordingSleeper()
    client = graph_env.client(tenant, sleeper=sleeper, max_retry_wait=30)
    listed = list(users.list_users(client))
    assert len(listed) == 7
    assert graph_env.control.fault(rule["id"])["hits"] == 4
    assert counts["users.list"] - before == 5  # 4 throttled attempts + the one that succeeded
    assert sleeper.waits == [1.0, 1.0, 1.0, 1.0]


def test_a_storm_longer_than_the_budget_raises_throttled(graph_env, tenant):
    rule = graph_env.control.add_fault(**_users_path_rule(tenant, status=429, retry_after=3))
    sleeper = RecordingSleeper()
    client = graph_env.client(tenant, sleeper=sleeper, max_retry_wait=10)
    with pytest.raises(Throttled) as caught:
        list(users.list_users(client))
    assert caught.value.retry_after == 3.0 and caught.value.status == 429
    assert caught.value.request_id
    assert sleeper.waits == [3.0, 3.0, 3.0]
    assert graph_env.control.fault(rule["id"])["hits"] == 4


def test_a_503_burst_then_success(graph_env, tenant):
    rule = graph_env.control.add_fault(**_users_path_rule(tenant, status=503, retry_after=None, count=2))
    sleeper = RecordingSleeper()
    client = graph_env.client(tenant, sleeper=sleeper)
    assert len(list(users.list_users(client))) == 7
    assert graph_env.control.fault(rule["id"])["hits"] == 2
    assert len(sleeper.waits) == 2 and all(w > 0 for w in sleeper.waits)  # backoff: no Retry-After


def test_504_and_dropped_connections_are_retried(graph_env, tenant):
    graph_env.control.add_fault(**_users_path_rule(tenant, status=504, count=1))
    graph_env.control.add_fault(**_users_path_rule(tenant, drop_connection=True, count=1))
    client = graph_env.client(tenant)
    assert len(list(users.list_users(client))) == 7


def test_connection_failures_past_the_budget_are_service_unavailable(graph_env, tenant):
    graph_env.control.add_fault(**_users_path_rule(tenant, drop_connection=True))
    sleeper = RecordingSleeper()
    client = graph_env.client(tenant, sleeper=sleeper, max_retry_wait=1)
    with pytest.raises(ServiceUnavailable) as caught:
        list(users.list_users(client))
    assert caught.value.retry_after > 0 and sleeper.total <= 1


def test_paging_across_four_pages(graph_env, tenant):
    client = graph_env.client(tenant)
    counts = graph_env.server.world.request_counts
    before = counts["users.list"]
    listed = list(users.list_users(client, page_size=2))
    assert sorted(u["id"] for u in listed) == sorted(u.id for u in tenant.users)
    assert all("accountEnabled" in u for u in listed)
    assert counts["users.list"] - before == 4


def test_delta_rounds_and_an_expired_delta_link(graph_env, tenant):
    client = graph_env.client(tenant)
    first = users.delta_round(client, page_size=3)
    assert sorted(c["id"] for c in first.changes) == sorted(u.id for u in tenant.users)
    assert first.pages >= 3

    target = tenant.users[0]
    graph_env.control.call("POST", f"/_control/tenants/{tenant.tenant_id}/users/{target.id}/disable")
    second = users.delta_round(client, first.delta_link)
    assert [(c["id"], c.get("accountEnabled")) for c in second.changes] == [(target.id, False)]

    graph_env.control.call("POST", f"/_control/tenants/{tenant.tenant_id}/delta/expire", expect=204)
    with pytest.raises(DeltaExpired) as caught:
        users.delta_round(client, second.delta_link)
    assert caught.value.status == 410 and "$deltatoken=" in caught.value.location
    restarted = users.delta_round(client, caught.value.location)
    assert len({c["id"] for c in restarted.changes}) == 7


def test_a_round_broken_mid_way_keeps_the_old_link(graph_env, tenant):
    client = graph_env.client(tenant, max_retry_wait=0)
    first = users.delta_round(client, page_size=2)
    graph_env.control.call("PATCH", f"/_control/tenants/{tenant.tenant_id}/users/{tenant.users[1].id}",
                           {"department": f"Finance {uuid.uuid4().hex[:6]}"})  # surely a change
    reader = users.delta_reader(client, None, page_size=2)
    pages = reader.pages()
    assert len(next(pages)) == 2
    graph_env.control.add_fault(method="GET", path=r"/v1\.0/users/delta$", tenant=tenant.tenant_id,
                                status=503, count=1)
    with pytest.raises(ServiceUnavailable):
        next(pages)
    assert not reader.complete
    again = users.delta_round(client, first.delta_link)
    assert [c["id"] for c in again.changes] == [tenant.users[1].id]


def test_delta_from_now_reports_only_later_changes(graph_env, tenant):
    client = graph_env.client(tenant)
    link = users.delta_link_from_now(client)
    graph_env.control.call("POST", f"/_control/tenants/{tenant.tenant_id}/users/{tenant.users[2].id}/soft-delete")
    changes = users.delta_round(client, link).changes
    assert changes == [{"id": tenant.users[2].id, "@removed": {"reason": "changed"}}]
    with pytest.raises(NotFound):
        users.get_user(client, tenant.users[2].id)


def test_a_batch_of_45_with_throttled_items(graph_env, tenant):
    many = graph_env.tenant(users=45)
    targets = many.users[5:45:8]  # 5 users whose inner requests get throttled twice
    rules = [graph_env.control.add_fault(method="GET", path=f"/v1.0/users/{u.id}$", tenant=many.tenant_id,
                                         status=429, retry_after=2 if n == 0 else 1, count=2)
             for n, u in enumerate(targets)]
    counts = graph_env.server.world.request_counts
    batches_before, gets_before = counts["batch"], counts["users.get"]
    sleeper = RecordingSleeper()
    client = graph_env.client(many, sleeper=sleeper)
    requests_ = [BatchRequest("GET", f"/users/{u.id}?$select=id,displayName,accountEnabled") for u in many.users]
    results = run_batch(client, requests_)
    assert [r.body["id"] for r in results] == [u.id for u in many.users]
    assert all(r.ok and r.status == 200 for r in results)
    assert [graph_env.control.fault(r["id"])["hits"] for r in rules] == [2] * 5
    assert sleeper.waits == [2.0, 2.0]  # the longest Retry-After among the throttled items, twice
    assert counts["batch"] - batches_before == 3 + 2
    assert counts["users.get"] - gets_before == 45 + 5 * 2


def test_batch_items_fail_individually_with_typed_errors(graph_env, tenant):
    client = graph_env.client(tenant)
    results = run_batch(client, [
        BatchRequest("GET", f"/users/{tenant.users[0].id}", id="a"),
        BatchRequest("GET", "/users/nobody-here", id="b"),
    ])
    assert results[0].ok and isinstance(results[1].error, NotFound)


def test_chains_and_independent_requests_in_one_call(graph_env, tenant):
    client = graph_env.client(tenant)
    ids = [u.id for u in tenant.users]
    requests_ = [BatchRequest("GET", f"/users/{ids[0]}", id="first"),
                 BatchRequest("GET", f"/users/{ids[1]}", id="second", depends_on="first"),
                 BatchRequest("GET", "/users/missing-user", id="third"),
                 BatchRequest("GET", f"/users/{ids[2]}", id="fourth", depends_on="third")]
    requests_ += [BatchRequest("GET", f"/users/{user_id}") for user_id in ids[3:]]
    results = run_batch(client, requests_)
    assert [r.ok for r in results] == [True, True, False, False] + [True] * 4
    assert isinstance(results[2].error, NotFound) and results[3].status == 424
    assert [r.body["id"] for r in results if r.ok] == [ids[0], ids[1], *ids[3:]]
