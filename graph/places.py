"""Rooms from the Places API.

https://learn.microsoft.com/en-us/graph/api/place-list — `GET /places/microsoft.graph.room`
(Place.Read.All), 100 per page by default. A room's `id` is documented as mutable: key rooms on
`emailAddress` (or `placeId`). Rooms hidden from the address list are not returned.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from graph.client import GraphClient

ROOMS_PATH = "/places/microsoft.graph.room"


def list_rooms(client: "GraphClient", *, page_size: int = 100) -> Iterator[dict]:
    return client.items(ROOMS_PATH, params={"$top": max(1, page_size)})
