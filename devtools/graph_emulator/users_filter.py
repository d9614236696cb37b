"""`$filter` for `GET /users`, compiled once into a predicate so paging tests users one by one
without re-parsing. Only what Graph documents for users is accepted; anything else is a 400, as
on Graph.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from devtools.graph_emulator.directory import USER_PROPERTIES
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.state import User

# Filters name stored properties only (case-insensitive); derived ones are not filterable.
_STORED = {name.lower(): name for name in USER_PROPERTIES}
_STRING_FILTERABLE = {"id", "userPrincipalName", "displayName", "mail", "givenName", "surname", "jobTitle",
                      "department", "officeLocation", "userType", "preferredLanguage", "mobilePhone"}
_CLAUSE_EQ = re.compile(r"^(\w+)\s+(eq|ne)\s+(?:'((?:[^']|'')*)'|(true|false|null))$", re.I)
_CLAUSE_IN = re.compile(r"^(\w+)\s+in\s+\((.*)\)$", re.I)
_CLAUSE_FN = re.compile(r"^(startswith|endswith)\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)$", re.I)


def split_top(text: str, word: str) -> list[str]:
    """Splits on ` and ` / ` or ` outside quotes and parentheses."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    token = f" {word} "
    lowered = text.lower()
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and lowered.startswith(token, i):
            parts.append(text[start:i])
            i += len(token)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _unsupported(clause: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause specified: '{clause}'.")


def _property(name: str, clause: str) -> str:
    known = _STORED.get(name.lower())
    if known is None:
        raise GraphError(400, "Request_BadRequest",
                         f"Property '{name}' does not exist as a declared property or extension property.")
    return known


def _user_value(user: User, name: str) -> Any:
    return getattr(user, USER_PROPERTIES[name])


def _equality_test(name: str, text: str | None, literal: str | None, clause: str) -> Callable[[User], bool]:
    """`accountEnabled eq true|false`, `<string property> eq '...'` (case-insensitive) or `eq null`."""
    if name == "accountEnabled" and literal and literal.lower() in ("true", "false"):
        enabled = literal.lower() == "true"
        return lambda u: u.account_enabled == enabled
    if name in _STRING_FILTERABLE and text is not None:
        wanted = text.replace("''", "'").lower()
        return lambda u: (_user_value(u, name) or "").lower() == wanted
    if name in _STRING_FILTERABLE and literal and literal.lower() == "null":
        return lambda u: _user_value(u, name) is None
    raise _unsupported(clause)


def _compile_clause(clause: str, advanced: bool) -> Callable[[User], bool]:
    while clause.startswith("(") and clause.endswith(")") and _CLAUSE_IN.match(clause) is None:
        clause = clause[1:-1].strip()
    if match := _CLAUSE_EQ.match(clause):
        name, op, text, literal = match.groups()
        name = _property(name, clause)
        if op.lower() == "ne" and not advanced:
            raise _unsupported(clause)
        test = _equality_test(name, text, literal, clause)
        return test if op.lower() == "eq" else (lambda u: not test(u))
    if match := _CLAUSE_IN.match(clause):
        name = _property(match.group(1), clause)
        if name not in _STRING_FILTERABLE:
            raise _unsupported(clause)
        values = {v.lower() for v in re.findall(r"'((?:[^']|'')*)'", match.group(2))}
        return lambda u: (_user_value(u, name) or "").lower() in values
    if match := _CLAUSE_FN.match(clause):
        function, name, text = match.groups()
        name = _property(name, clause)
        if name not in _STRING_FILTERABLE or (function.lower() == "endswith" and not advanced):
            raise _unsupported(clause)
        prefix = text.replace("''", "'").lower()
        if function.lower() == "startswith":
            return lambda u: (_user_value(u, name) or "").lower().startswith(prefix)
        return lambda u: (_user_value(u, name) or "").lower().endswith(prefix)
    raise _unsupported(clause)


def compile_user_filter(text: str | None, advanced: bool = False) -> Callable[[User], bool] | None:
    """The documented simple filters (eq, in, startswith; `and`/`or`), plus `ne` and `endswith`
    for advanced queries (ConsistencyLevel: eventual with $count=true). Anything else is a 400."""
    if text is None or not text.strip():
        return None
    alternatives = []
    for alternative in split_top(text.strip(), "or"):
        tests = [_compile_clause(clause, advanced) for clause in split_top(alternative, "and")]
        alternatives.append(tests)
    return lambda u: any(all(t(u) for t in tests) for tests in alternatives)
