"""`GET /users/delta`: rounds paged by skiptoken, replayed by deltaLink from the directory's change
log. A round snapshots its ids once and keeps them server-side, so pages stay stable while the
directory changes; deltaLinks are signed tokens that carry the query, as Graph's do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, json_response
from devtools.graph_emulator.directory import Directory, directory
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.identity import DIRECTORY_READ, authorize
from devtools.graph_emulator.state import Tenant, new_guid
from devtools.graph_emulator.users_filter import split_top
from devtools.graph_emulator.users_query import (
    DEFAULT_SELECT, MAX_PAGE, SELECTABLE, decode_token, encode_token, odata_context, parse_select,
    query_option, reject_unknown_options, render_user,
)

DELTA_TOKEN_LIFETIME = timedelta(days=7)  # directory delta tokens (delta-query-overview)
DELTA_DEFAULT_PAGE = 200
DELTA_MAX_FILTER_IDS = 50
MAX_ROUNDS_KEPT = 256
_DELTA_OPTIONS = {"select", "filter", "deltatoken", "skiptoken"}


@dataclass
class DeltaRound:
    """Server-side state of one delta round being paged: the ids to report (snapshotted once),
    what was selected, and the sequence number the round's deltaLink will continue from."""
    ids: list[str]
    select: tuple[str, ...]
    since_next: int
    started_at: datetime
    filter_ids: tuple[str, ...] | None
    # Page size asked for when the round started; a later Prefer header overrides it.
    page_size: int = DELTA_DEFAULT_PAGE
    # For `Prefer: return=minimal`: the properties that changed per user (None = all selected).
    changed: dict[str, frozenset[str] | None] | None = None


def _resync_required(ctx: Ctx, select: tuple[str, ...] | None) -> GraphError:
    """410 Gone with a Location that restarts a full sync (empty $deltatoken), as documented."""
    query = f"$select={','.join(select)}&" if select else ""
    return GraphError(410, "syncStateNotFound",
                      "The sync state generation is not found. The delta token is expired and data must be "
                      "synchronized again.",
                      headers={"Location": f"{ctx.world.base_url}/v1.0/users/delta?{query}$deltatoken="})


def _delta_filter_ids(raw: str | None) -> tuple[str, ...] | None:
    """User delta only filters by id: `id eq '...'` OR-ed, at most 50 (user-delta docs)."""
    if raw is None or not raw.strip():
        return None
    ids = []
    for clause in split_top(raw.strip(), "or"):
        match = re.fullmatch(r"\(?\s*id\s+eq\s+'([^']+)'\s*\)?", clause, re.I)
        if not match:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported query filter clause for delta: '{clause}'. Only id eq '...' clauses joined by 'or' are supported.")
        ids.append(match.group(1))
    if len(ids) > DELTA_MAX_FILTER_IDS:
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"Too many ids in the filter: {len(ids)}; at most {DELTA_MAX_FILTER_IDS} are supported.")
    return tuple(ids)


def _delta_page_size(ctx: Ctx) -> tuple[int, bool]:
    raw = ctx.prefer("odata.maxpagesize")
    if raw:
        try:
            return max(1, min(int(raw), MAX_PAGE)), True
        except ValueError:
            pass
    return DELTA_DEFAULT_PAGE, False


def _changes_since(state: Directory, since: int, select: tuple[str, ...],
                   filter_ids: tuple[str, ...] | None) -> tuple[list[str], dict[str, frozenset[str] | None]]:
    """Users to report after `since`: created/restored/removed ones, and those whose changes touch
    a selected property. Ordered by their last change; with the changed properties per user."""
    wanted = set(select)
    only = set(filter_ids) if filter_ids else None
    changed: dict[str, frozenset[str] | None] = {}
    last_seq: dict[str, int] = {}
    for entry in state.entries_after(since):
        if only is not None and entry.user_id not in only:
            continue
        if entry.removed or entry.properties is None:
            changed[entry.user_id] = None
        elif entry.properties & wanted:
            previous = changed.get(entry.user_id, frozenset())
            changed[entry.user_id] = None if previous is None else previous | (entry.properties & wanted)
        else:
            continue
        last_seq[entry.user_id] = entry.seq
    return sorted(last_seq, key=last_seq.__getitem__), changed


def _delta_item(tenant: Tenant, user_id: str, select: tuple[str, ...],
                changed: frozenset[str] | None, minimal: bool) -> dict[str, Any]:
    user = tenant.users.get(user_id)
    if user is None:
        return {"id": user_id, "@removed": {"reason": "deleted"}}
    if user.deleted_at is not None:
        return {"id": user_id, "@removed": {"reason": "changed"}}
    if minimal and changed is not None:
        select = tuple(name for name in select if name in changed)
    return render_user(user, select, always_id=True)


def _start_round(ctx: Ctx, tenant: Tenant, select: tuple[str, ...], filter_ids: tuple[str, ...] | None,
                 since: int | None) -> DeltaRound:
    """Snapshots the ids of a new round once: all live users (initial round) or the changes
    after `since` (a replayed deltaLink)."""
    state = directory(tenant)
    since_next = ctx.world.next_seq()
    if since is None:
        ids = list(state.live_ids) if filter_ids is None else \
            [i for i in dict.fromkeys(filter_ids) if i in tenant.users and tenant.users[i].deleted_at is None]
        return DeltaRound(ids, select, since_next, ctx.world.clock.now(), filter_ids)
    ids, changed = _changes_since(state, since, select, filter_ids)
    return DeltaRound(ids, select, since_next, ctx.world.clock.now(), filter_ids, changed=changed)


def _keep_round(state: Directory, round_: DeltaRound) -> str:
    round_id = new_guid()
    state.rounds[round_id] = round_
    while len(state.rounds) > MAX_ROUNDS_KEPT:
        state.rounds.pop(next(iter(state.rounds)))
    return round_id


def _delta_link(ctx: Ctx, tenant: Tenant, round_: DeltaRound) -> str:
    token = encode_token({"t": tenant.id, "s": round_.since_next, "i": int(round_.started_at.timestamp()),
                           "sel": list(round_.select), "ids": list(round_.filter_ids or []) or None},
                          ctx.world.signing_key)
    return f"{ctx.world.base_url}/v1.0/users/delta?$deltatoken={token}"


def _serve_page(ctx: Ctx, tenant: Tenant, round_: DeltaRound, round_id: str | None, offset: int) -> Response:
    size, from_header = _delta_page_size(ctx)
    if from_header:
        round_.page_size = size
    else:
        size = round_.page_size
    minimal = (ctx.prefer("return") or "").lower() == "minimal"
    state = directory(tenant)
    page_ids = round_.ids[offset:offset + size]
    changed = round_.changed or {}
    body: dict[str, Any] = {
        "@odata.context": odata_context(ctx, "users", round_.select, DEFAULT_SELECT),
        "value": [_delta_item(tenant, i, round_.select, changed.get(i), minimal) for i in page_ids],
    }
    if offset + size < len(round_.ids):
        round_id = round_id or _keep_round(state, round_)
        skip = encode_token({"t": tenant.id, "r": round_id, "o": offset + size}, ctx.world.signing_key)
        body["@odata.nextLink"] = f"{ctx.world.base_url}/v1.0/users/delta?$skiptoken={skip}"
    else:
        body["@odata.deltaLink"] = _delta_link(ctx, tenant, round_)
    headers = {}
    applied = [f"odata.maxpagesize={size}"] if from_header else []
    if minimal:
        applied.append("return=minimal")
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    return json_response(body, headers=headers)


def users_delta(ctx: Ctx) -> Response:
    authorize(ctx, DIRECTORY_READ, kind="directory")
    args = ctx.request.args
    for unsupported in ("top", "orderby", "expand", "skip", "search", "count"):
        if query_option(ctx, unsupported) is not None:
            raise GraphError(400, "Request_BadRequest",
                             f"The query parameter '${unsupported}' is not supported with change tracking over the 'Users' resource.")
    reject_unknown_options(ctx, _DELTA_OPTIONS)
    tenant = ctx.caller.tenant
    world = ctx.world
    skiptoken, deltatoken = query_option(ctx, "skiptoken"), query_option(ctx, "deltatoken")
    with world.lock:
        state = directory(tenant)
        if skiptoken is not None:
            if query_option(ctx, "select") is not None or query_option(ctx, "filter") is not None:
                raise GraphError(400, "Request_BadRequest",
                                 "$select and $filter are not supported together with $skiptoken; the skip token already carries the query.")
            data = decode_token(skiptoken, world.signing_key)
            if data is None or data.get("t") != tenant.id:
                raise GraphError(400, "Request_BadRequest", "Badly formed skip token.")
            round_ = state.rounds.get(data["r"])
            if round_ is None or world.clock.now() - round_.started_at >= DELTA_TOKEN_LIFETIME:
                raise _resync_required(ctx, round_.select if round_ else None)
            return _serve_page(ctx, tenant, round_, data["r"], int(data["o"]))
        if deltatoken:
            if deltatoken.lower() == "latest":
                select = parse_select(query_option(ctx, "select"), SELECTABLE, DEFAULT_SELECT, "microsoft.graph.user")
                round_ = DeltaRound([], select, world.next_seq(), world.clock.now(),
                                    _delta_filter_ids(query_option(ctx, "filter")))
                return _serve_page(ctx, tenant, round_, None, 0)
            data = decode_token(deltatoken, world.signing_key)
            if data is None or data.get("t") != tenant.id:
                raise GraphError(400, "Request_BadRequest", "Badly formed delta token.")
            select = tuple(data["sel"])
            issued = datetime.fromtimestamp(data["i"], tz=timezone.utc)
            if world.clock.now() - issued >= DELTA_TOKEN_LIFETIME or data["s"] < state.tokens_valid_from_seq:
                raise _resync_required(ctx, select)
            round_ = _start_round(ctx, tenant, select, tuple(data["ids"]) if data.get("ids") else None, data["s"])
            return _serve_page(ctx, tenant, round_, None, 0)
        select = parse_select(query_option(ctx, "select"), SELECTABLE, DEFAULT_SELECT, "microsoft.graph.user")
        round_ = _start_round(ctx, tenant, select, _delta_filter_ids(query_option(ctx, "filter")), None)
        return _serve_page(ctx, tenant, round_, None, 0)
