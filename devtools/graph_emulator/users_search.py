"""`$search` and `$orderby` for `GET /users` (user-list; aad-advanced-queries).

- `$search="property:term"` works only with `ConsistencyLevel: eventual`; without it Graph
  answers 400 Request_UnsupportedQuery "Request with $search query parameter only works through
  MSGraph with a special request header: 'ConsistencyLevel: eventual'". Terms are quoted
  clauses joined by AND / OR (AND binds tighter); a clause matches when every word of the term
  starts a word of the property's value (values split on spaces, symbols and camelCase; case
  does not matter), the tokenized prefix match the docs describe.
- `$orderby=property [asc|desc]`: displayName and userPrincipalName sort on their own; together
  with `$filter` or `$search`, or on other properties, sorting needs the advanced query
  (ConsistencyLevel: eventual and `$count=true`), otherwise 400 Request_UnsupportedQuery
  "Sorting not supported for current query.".
"""
from __future__ import annotations

import re
from typing import Callable

from devtools.graph_emulator.directory import USER_PROPERTIES
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.state import User

SEARCH_NEEDS_EVENTUAL = ("Request with $search query parameter only works through MSGraph with a special "
                         "request header: 'ConsistencyLevel: eventual'")
SORTING_NOT_SUPPORTED = "Sorting not supported for current query."
SEARCHABLE = ("displayName", "givenName", "surname", "mail", "userPrincipalName", "jobTitle", "department",
              "officeLocation")
# Sortable without the advanced query (when nothing else narrows the list) and with it.
SORTABLE_SIMPLE = ("displayName", "userPrincipalName")
SORTABLE_ADVANCED = (*SORTABLE_SIMPLE, "mail", "givenName", "surname", "jobTitle", "department",
                     "officeLocation")

_CLAUSE = re.compile(r'^"\s*(\w+)\s*:\s*([^"]*)"$')
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", re.UNICODE)


def _unsupported(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def words(text: str) -> list[str]:
    """A value's searchable words: split on anything not a letter or digit and at camelCase."""
    return [w.lower() for w in _WORD.findall(text or "")]


def _value(user: User, name: str) -> str:
    value = getattr(user, USER_PROPERTIES[name], None)
    return value if isinstance(value, str) else ""


def _clause(text: str) -> Callable[[User], bool]:
    match = _CLAUSE.match(text.strip())
    if match is None:
        raise GraphError(400, "Request_BadRequest",
                         f"Invalid $search clause '{text.strip()}'; expected \"property:term\".")
    wanted = {p.lower(): p for p in SEARCHABLE}.get(match.group(1).lower())
    if wanted is None:
        raise _unsupported(f"Property '{match.group(1)}' is not supported by $search.")
    term_words = words(match.group(2))
    if not term_words:
        return lambda user: True
    return lambda user: all(any(w.startswith(t) for w in words(_value(user, wanted))) for t in term_words)


def compile_search(text: str | None, eventual: bool) -> Callable[[User], bool] | None:
    if text is None or not text.strip():
        return None
    if not eventual:
        raise _unsupported(SEARCH_NEEDS_EVENTUAL)
    alternatives = []
    for alternative in re.split(r"\s+OR\s+", text.strip()):
        alternatives.append([_clause(part) for part in re.split(r"\s+AND\s+", alternative)])
    return lambda user: any(all(test(user) for test in tests) for tests in alternatives)


def compile_order(text: str | None, advanced: bool, narrowed: bool) -> Callable[[list[User]], list[User]] | None:
    """A sort for `$orderby`, or None when absent. `narrowed`: a $filter or $search is present."""
    if text is None or not text.strip():
        return None
    if narrowed and not advanced:
        raise _unsupported(SORTING_NOT_SUPPORTED)
    keys: list[tuple[str, bool]] = []
    allowed = SORTABLE_ADVANCED if advanced else SORTABLE_SIMPLE
    canonical = {name.lower(): name for name in allowed}
    for part in text.split(","):
        name, _, direction = part.strip().partition(" ")
        known = canonical.get(name.lower())
        if known is None or direction.strip().lower() not in ("", "asc", "desc"):
            raise _unsupported(SORTING_NOT_SUPPORTED)
        keys.append((known, direction.strip().lower() == "desc"))

    def sort(users: list[User]) -> list[User]:
        ordered = sorted(users, key=lambda u: u.id)  # ties keep a stable, id-based order
        for name, descending in reversed(keys):
            attribute = USER_PROPERTIES[name]
            # Users without a value sort after those with one, in either direction [unverified].
            present = [u for u in ordered if getattr(u, attribute, None) not in (None, "")]
            missing = [u for u in ordered if getattr(u, attribute, None) in (None, "")]
            present.sort(key=lambda u: _sort_key(getattr(u, attribute)), reverse=descending)
            ordered = present + missing
        return ordered
    return sort


def _sort_key(value):
    return value.lower() if isinstance(value, str) else value
