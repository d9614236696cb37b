"""`GET /users` and `GET /users/{id | userPrincipalName}`: `$select`, `$filter`, `$top`, `$count`,
`$search` and `$orderby` (users_search), and skiptoken paging: over the directory's sorted live
ids, or, once `$search` or `$orderby` reorders or narrows the list, over positions in it. The reading helpers here ($select,
rendering, signed tokens) are shared with users delta and places so all answer alike.
"""
from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import json
from typing import Any, Iterable
from urllib.parse import quote

from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, json_response
from devtools.graph_emulator.directory import USER_PROPERTIES, directory
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.identity import DIRECTORY_READ, authorize, b64url, b64url_decode
from devtools.graph_emulator.state import User
from devtools.graph_emulator.users_filter import compile_user_filter
from devtools.graph_emulator.users_search import compile_order, compile_search

# ---- reading helpers: $select, rendering, query options, signed tokens --------------------------

# GET /users without $select returns these (user-list docs); everything else must be selected.
DEFAULT_SELECT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                  "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
# Real user properties the emulator does not model: selectable, derived or empty.
DERIVED_PROPERTIES = {
    "mailNickname": lambda u: u.user_principal_name.split("@")[0],
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.mail else [],
    "otherMails": lambda u: [],
    "imAddresses": lambda u: [],
    "deletedDateTime": lambda u: None,
    "employeeId": lambda u: None,
    "companyName": lambda u: None,
    "city": lambda u: None,
    "country": lambda u: None,
    "usageLocation": lambda u: None,
    "onPremisesSyncEnabled": lambda u: None,
    "onPremisesImmutableId": lambda u: None,
}
SELECTABLE = {name.lower(): name for name in (*USER_PROPERTIES, *DERIVED_PROPERTIES)}
MAX_PAGE = 999


def parse_select(raw: str | None, canonical: dict[str, str], default: tuple[str, ...], type_name: str) -> tuple[str, ...]:
    """`$select` names (case-insensitive, Graph casing kept), or `default` when absent."""
    if raw is None or not raw.strip():
        return default
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        known = canonical.get(name.lower())
        if known is None:
            raise GraphError(400, "Request_BadRequest",
                             f"Could not find a property named '{name}' on type '{type_name}'.")
        if known not in names:
            names.append(known)
    return tuple(names)


def render_user(user: User, select: Iterable[str], always_id: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": user.id} if always_id else {}
    for name in select:
        if name in USER_PROPERTIES:
            value = getattr(user, USER_PROPERTIES[name])
            body[name] = list(value) if isinstance(value, list) else value
        else:
            body[name] = DERIVED_PROPERTIES[name](user)
    return body


def odata_context(ctx: Ctx, entity_set: str, select: tuple[str, ...], default: tuple[str, ...], suffix: str = "") -> str:
    shape = "" if select == default else "(" + ",".join(select) + ")"
    return f"{ctx.world.base_url}/v1.0/$metadata#{entity_set}{shape}{suffix}"


def query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{key}={quote(value, safe=',()=$*:')}" for key, value in pairs)


def query_option(ctx: Ctx, name: str) -> str | None:
    """Graph accepts system query options with or without the `$`."""
    args = ctx.request.args
    return args.get(f"${name}", args.get(name))


def reject_unknown_options(ctx: Ctx, allowed: set[str]) -> None:
    for key in ctx.request.args:
        name = key[1:] if key.startswith("$") else key
        if key.startswith("$") and name.lower() not in allowed:
            raise GraphError(400, "Request_BadRequest", f"'{key}' is not supported by the service.")


def encode_token(data: dict[str, Any], key: bytes) -> str:
    """Paging state as signed JSON, so skip and delta tokens stay opaque and cannot be forged."""
    payload = b64url(json.dumps(data, separators=(",", ":")).encode())
    signature = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{payload}.{signature}"


def decode_token(token: str, key: bytes) -> dict[str, Any] | None:
    payload, _, signature = token.partition(".")
    expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        return json.loads(b64url_decode(payload))
    except ValueError:
        return None


# ---- GET /users and /users/{id} ------------------------------------------------------------------

_LIST_OPTIONS = {"select", "filter", "top", "skiptoken", "count", "search", "orderby"}


def _is_eventual(ctx: Ctx) -> bool:
    return ctx.request.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"


def _is_advanced(ctx: Ctx) -> bool:
    return _is_eventual(ctx) and (query_option(ctx, "count") or "").lower() == "true"


def _page_size(ctx: Ctx) -> int:
    raw = query_option(ctx, "top")
    if raw is None:
        return 100
    try:
        size = int(raw)
    except ValueError:
        raise GraphError(400, "Request_BadRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.") from None
    if not 1 <= size <= MAX_PAGE:
        raise GraphError(400, "Request_BadRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.")
    return size


def list_users(ctx: Ctx) -> Response:
    authorize(ctx, DIRECTORY_READ, kind="directory")
    reject_unknown_options(ctx, _LIST_OPTIONS)
    tenant = ctx.caller.tenant
    select = parse_select(query_option(ctx, "select"), SELECTABLE, DEFAULT_SELECT, "microsoft.graph.user")
    size = _page_size(ctx)
    advanced = _is_advanced(ctx)
    count_wanted = (query_option(ctx, "count") or "").lower() == "true"
    if count_wanted and not advanced:
        raise GraphError(400, "Request_BadRequest",
                         "$count is only supported with the ConsistencyLevel:eventual header.")
    matches = compile_user_filter(query_option(ctx, "filter"), advanced)
    searched = compile_search(query_option(ctx, "search"), _is_eventual(ctx))
    order = compile_order(query_option(ctx, "orderby"), advanced,
                          narrowed=matches is not None or searched is not None)
    state = None
    if (raw_skip := query_option(ctx, "skiptoken")) is not None:
        state = decode_token(raw_skip, ctx.world.signing_key)
        if state is None or state.get("t") != tenant.id:
            raise GraphError(400, "Request_BadRequest", "Invalid or expired skip token.")
    with ctx.world.lock:
        ids = directory(tenant).live_ids
        if searched is None and order is None:
            page, more, total, next_state = _page_by_id(tenant, ids, matches, size, state)
        else:
            page, more, total, next_state = _page_by_position(tenant, ids, matches, searched, order, size, state)
        body: dict[str, Any] = {"@odata.context": odata_context(ctx, "users", select, DEFAULT_SELECT)}
        if count_wanted:
            body["@odata.count"] = total()
        body["value"] = [render_user(u, select) for u in page]
    if more and page:
        pairs = [(k, v) for k, v in ctx.request.args.items(multi=True) if k.lstrip("$").lower() != "skiptoken"]
        pairs.append(("$skiptoken", encode_token({"t": tenant.id, **next_state}, ctx.world.signing_key)))
        body["@odata.nextLink"] = f"{ctx.world.base_url}/v1.0/users?{query_string(pairs)}"
    return json_response(body)


def _page_by_id(tenant, ids: list[str], matches, size: int, state: dict | None):
    """Walks the sorted live ids from after the last id served: stable under concurrent changes."""
    position = 0 if state is None else bisect.bisect_right(ids, state.get("a", ""))
    page: list[User] = []
    while position < len(ids) and len(page) < size:
        user = tenant.users[ids[position]]
        position += 1
        if matches is None or matches(user):
            page.append(user)
    more = position < len(ids) and (matches is None or any(
        matches(tenant.users[i]) for i in itertools.islice(ids, position, None)))
    total = lambda: sum(1 for i in ids if matches is None or matches(tenant.users[i]))  # noqa: E731
    return page, more, total, {"a": page[-1].id if page else ""}


def _page_by_position(tenant, ids: list[str], matches, searched, order, size: int, state: dict | None):
    """Searched or sorted lists page by position in the list as it is now (an eventual-consistency
    index, like the one behind Graph's advanced queries)."""
    users = [tenant.users[i] for i in ids]
    users = [u for u in users if (matches is None or matches(u)) and (searched is None or searched(u))]
    if order is not None:
        users = order(users)
    start = 0 if state is None else int(state.get("p", 0))
    page = users[start:start + size]
    return page, start + size < len(users), lambda: len(users), {"p": start + len(page)}


def get_user(ctx: Ctx) -> Response:
    authorize(ctx, DIRECTORY_READ, kind="directory")
    reject_unknown_options(ctx, {"select"})
    tenant = ctx.caller.tenant
    select = parse_select(query_option(ctx, "select"), SELECTABLE, DEFAULT_SELECT, "microsoft.graph.user")
    key = ctx.params["user"]
    with ctx.world.lock:
        user = tenant.find_user(key)
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")
        body = {"@odata.context": odata_context(ctx, "users", select, DEFAULT_SELECT, "/$entity"),
                **render_user(user, select)}
    return json_response(body)
