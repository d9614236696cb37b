"""Rooms from the Places API through the client."""
from graph import places
from tests.integration.graph.support import graph_env  # noqa: F401  (module fixture)


def test_rooms_are_listed_across_pages_without_hidden_ones(graph_env):
    tenant = graph_env.tenant(rooms=[
        {"alias": "alpha", "capacity": 4}, {"alias": "beta", "capacity": 6}, {"alias": "gamma", "capacity": 8},
        {"alias": "secret", "hidden_from_gal": True},
    ])
    client = graph_env.client(tenant)
    counts = graph_env.server.world.request_counts
    before = counts["places.rooms"]
    rooms = list(places.list_rooms(client, page_size=1))
    assert sorted(r["emailAddress"] for r in rooms) == sorted(
        f"{alias}@{tenant.domain}" for alias in ("alpha", "beta", "gamma"))
    assert counts["places.rooms"] - before == 3
    assert {r["capacity"] for r in rooms} == {4, 6, 8}
