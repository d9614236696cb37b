"""Users from Entra ID: list, get, delta.

https://learn.microsoft.com/en-us/graph/api/user-list
https://learn.microsoft.com/en-us/graph/api/user-delta
`accountEnabled` and `userType` are not default properties, and delta reports changes only to
selected properties, so every call here sends an explicit `$select` that includes them: without
it a disabled user would never show up as a change.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

from graph.delta import DeltaReader, DeltaRound, run_round
from graph.paths import segment

if TYPE_CHECKING:
    from graph.client import GraphClient

USER_FIELDS: tuple[str, ...] = (
    "id", "userPrincipalName", "displayName", "mail", "givenName", "surname", "jobTitle",
    "department", "officeLocation", "mobilePhone", "businessPhones", "preferredLanguage",
    "accountEnabled", "userType",
)
# $top on /users accepts 1..999 (default 100); delta takes the size as a preference instead.
MAX_PAGE_SIZE = 999
DELTA_PATH = "/users/delta"


def _select(fields: Sequence[str]) -> str:
    if "accountEnabled" not in fields:
        raise ValueError("select accountEnabled, or disabled users go unnoticed")
    return ",".join(dict.fromkeys(("id", *fields)))


def _page_size(page_size: int) -> int:
    return min(max(page_size, 1), MAX_PAGE_SIZE)


def list_users(client: "GraphClient", *, select: Sequence[str] = USER_FIELDS,
               filter: str | None = None, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
    params = {"$select": _select(select), "$top": _page_size(page_size)}
    if filter:
        params["$filter"] = filter
    return client.items("/users", params=params)


def get_user(client: "GraphClient", id_or_upn: str, *, select: Sequence[str] = USER_FIELDS) -> dict:
    """Raises NotFound for an unknown (or soft-deleted) user."""
    return client.get(f"/users/{segment(id_or_upn)}", params={"$select": _select(select)})


def delta_reader(client: "GraphClient", delta_link: str | None = None, *,
                 select: Sequence[str] = USER_FIELDS, page_size: int = MAX_PAGE_SIZE) -> DeltaReader:
    """A round from a saved deltaLink (used verbatim: it encodes the $select), or a full first
    round when there is none."""
    headers = {"Prefer": f"odata.maxpagesize={_page_size(page_size)}"}
    if delta_link:
        return DeltaReader(client, delta_link, headers=headers)
    return DeltaReader(client, DELTA_PATH, params={"$select": _select(select)}, headers=headers)


def delta_round(client: "GraphClient", delta_link: str | None = None, *,
                select: Sequence[str] = USER_FIELDS, page_size: int = MAX_PAGE_SIZE) -> DeltaRound:
    """Changes since `delta_link` (or every user on a first round) and the next deltaLink.

    Removed users come as {"id", "@removed": {"reason": "changed"|"deleted"}}; the same user may
    appear more than once in a round (merge by id, last wins)."""
    return delta_reader(client, delta_link, select=select, page_size=page_size).read_round()


def delta_link_from_now(client: "GraphClient", *, select: Sequence[str] = USER_FIELDS) -> str:
    """A deltaLink that reports only changes from now on (`$deltatoken=latest`), without reading
    the current directory."""
    round_ = run_round(client, DELTA_PATH, params={"$select": _select(select), "$deltatoken": "latest"})
    return round_.delta_link
