"""Collections across pages: follow `@odata.nextLink` until it is gone.

https://learn.microsoft.com/en-us/graph/paging — the link is used exactly as returned (it
carries an opaque $skiptoken and the original query), and a page may be empty yet still have a
nextLink, so only the missing link ends the collection.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping

if TYPE_CHECKING:
    from graph.client import GraphClient

NEXT_LINK = "@odata.nextLink"


def iter_pages(client: "GraphClient", path_or_url: str, *, params: Mapping[str, Any] | None = None,
               headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> Iterator[dict]:
    """Yields each page (the whole JSON object, so callers can also read deltaLink etc.)."""
    url: str | None = path_or_url
    query = params
    while url:
        page = client.get(url, params=query, headers=headers, mailbox=mailbox)
        yield page
        url = page.get(NEXT_LINK)
        query = None  # the link already holds the whole query


def iter_items(client: "GraphClient", path_or_url: str, *, params: Mapping[str, Any] | None = None,
               headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> Iterator[dict]:
    """Yields the items of every page's `value`."""
    for page in iter_pages(client, path_or_url, params=params, headers=headers, mailbox=mailbox):
        yield from page.get("value") or []
