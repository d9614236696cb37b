"""Delta query rounds: pages of changes that end with a deltaLink.

https://learn.microsoft.com/en-us/graph/delta-query-overview — every page carries either an
`@odata.nextLink` (keep reading, even if `value` is empty) or an `@odata.deltaLink` (the round is
complete; store it for the next round). The new deltaLink is handed out only once the round is
complete: if a page fails mid-way, the caller still holds its previous link and simply runs the
round again (delta replays are expected; apply changes idempotently).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from graph.errors import GraphError
from graph.paging import NEXT_LINK, iter_pages

if TYPE_CHECKING:
    from graph.client import GraphClient

DELTA_LINK = "@odata.deltaLink"


@dataclass
class DeltaRound:
    """A complete round: every change (in page order) and the link for the next round."""
    changes: list[dict]
    delta_link: str
    pages: int


class DeltaReader:
    """Streams one round page by page (for rounds too large to hold), then exposes the deltaLink.

    `delta_link` raises until the last page has been read, so a half-read round can never be
    mistaken for a complete one."""

    def __init__(self, client: "GraphClient", start: str, *, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> None:
        self._client = client
        self._start = start
        self._params = params
        self._headers = headers
        self._mailbox = mailbox
        self._delta_link: str | None = None
        self.pages_read = 0

    def pages(self) -> Iterator[list[dict]]:
        """Yields each page's `value` list in order."""
        if self._delta_link is not None or self.pages_read:
            raise RuntimeError("a DeltaReader reads its round once")
        for page in iter_pages(self._client, self._start, params=self._params, headers=self._headers,
                               mailbox=self._mailbox):
            self.pages_read += 1
            next_link, delta_link = page.get(NEXT_LINK), page.get(DELTA_LINK)
            if not next_link and not delta_link:
                raise GraphError(0, "DeltaRoundIncomplete",
                                 "a delta page carried neither a nextLink nor a deltaLink")
            yield list(page.get("value") or [])
            if delta_link and not next_link:
                self._delta_link = delta_link

    @property
    def complete(self) -> bool:
        return self._delta_link is not None

    @property
    def delta_link(self) -> str:
        if self._delta_link is None:
            raise RuntimeError("the delta round is not complete; keep the previous deltaLink")
        return self._delta_link

    def read_round(self) -> DeltaRound:
        """Reads every page and returns the complete round."""
        changes: list[dict] = []
        for page in self.pages():
            changes.extend(page)
        return DeltaRound(changes=changes, delta_link=self.delta_link, pages=self.pages_read)


def run_round(client: "GraphClient", start: str, *, params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> DeltaRound:
    """Reads a whole round. `start` is a saved deltaLink, or the delta URL for a first round."""
    return DeltaReader(client, start, params=params, headers=headers, mailbox=mailbox).read_round()
