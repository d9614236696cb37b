import pytest

from graph.delta import DeltaReader, run_round
from graph.errors import DeltaExpired, GraphError, Throttled
from tests.unit.graph.fakes import API, ScriptedSession, graph_error, make_client, response


def test_pages_follow_next_links_verbatim_and_an_empty_page_is_not_the_end():
    link1 = API + "/users?$skiptoken=AAA%2Fb%3D%3D"
    link2 = API + "/users?$skiptoken=BBB"
    session = ScriptedSession([
        response(200, {"value": [{"id": "1"}], "@odata.nextLink": link1}),
        response(200, {"value": [], "@odata.nextLink": link2}),
        response(200, {"value": [{"id": "2"}, {"id": "3"}]}),
    ])
    client, _ = make_client(session)
    assert [u["id"] for u in client.items("/users", params={"$top": 1})] == ["1", "2", "3"]
    assert [s.url for s in session.sent] == [API + "/users?$top=1", link1, link2]


def test_a_complete_round_hands_out_the_delta_link():
    delta = API + "/users/delta?$deltatoken=new"
    session = ScriptedSession([
        response(200, {"value": [{"id": "1"}], "@odata.nextLink": API + "/users/delta?$skiptoken=s1"}),
        response(200, {"value": [], "@odata.nextLink": API + "/users/delta?$skiptoken=s2"}),
        response(200, {"value": [{"id": "2", "@removed": {"reason": "changed"}}], "@odata.deltaLink": delta}),
    ])
    client, _ = make_client(session)
    round_ = run_round(client, API + "/users/delta?$deltatoken=old")
    assert round_.delta_link == delta
    assert [c["id"] for c in round_.changes] == ["1", "2"]
    assert round_.pages == 3


def test_a_round_that_fails_mid_way_hands_out_nothing():
    session = ScriptedSession([
        response(200, {"value": [{"id": "1"}], "@odata.nextLink": API + "/users/delta?$skiptoken=s1"}),
        graph_error(429, "TooManyRequests", headers={"Retry-After": "100"}),
    ])
    client, _ = make_client(session, max_retry_wait=1)
    reader = DeltaReader(client, API + "/users/delta?$deltatoken=old")
    seen = []
    with pytest.raises(Throttled):
        for page in reader.pages():
            seen.extend(page)
    assert seen == [{"id": "1"}]
    assert not reader.complete
    with pytest.raises(RuntimeError):
        _ = reader.delta_link


def test_expired_token_raises_delta_expired_with_the_restart_location():
    restart = API + "/users/delta?$deltatoken="
    session = ScriptedSession([graph_error(410, "Gone", headers={"Location": restart})])
    client, _ = make_client(session)
    with pytest.raises(DeltaExpired) as caught:
        run_round(client, API + "/users/delta?$deltatoken=stale")
    assert caught.value.location == restart


def test_a_page_without_any_link_is_an_incomplete_round():
    session = ScriptedSession([response(200, {"value": [{"id": "1"}]})])
    client, _ = make_client(session)
    with pytest.raises(GraphError) as caught:
        run_round(client, "/users/delta")
    assert caught.value.code == "DeltaRoundIncomplete"


def test_a_reader_reads_once():
    session = ScriptedSession([response(200, {"value": [], "@odata.deltaLink": API + "/d?$deltatoken=1"})])
    client, _ = make_client(session)
    reader = DeltaReader(client, "/users/delta")
    assert list(reader.pages()) == [[]]
    assert reader.delta_link.endswith("$deltatoken=1")
    with pytest.raises(RuntimeError):
        list(reader.pages())
