"""calendarView delta (GRAPH.md §4.4): rounds of nextLink pages ending in a deltaLink.

- The first request names the window (`startDateTime`, `endDateTime`); the state tokens
  (`$skiptoken`, `$deltatoken`) encode it, so later requests carry only the token.
- Pages hold `Prefer: odata.maxpagesize` items (default 10 here [unverified]); the full
  calendarView property set is returned; `$select`, `$expand`, `$filter`, `$orderby` and
  `$search` are refused with a 400.
- Results are single instances, occurrences and exceptions, never series masters.
- Replaying a deltaLink returns what changed since: new or changed instances in full, and
  `{"@odata.type": "#microsoft.graph.event", "id", "@removed": {"reason": "deleted"}}` for
  instances that were deleted or left the window, and also for items outside the window that
  were added, changed or deleted after the token (documented quirk: clients must not treat
  those as deletions of in-window data).
- Tokens live in a per-mailbox cache that keeps the newest rounds only; an evicted, expired or
  unknown token is 410 `SyncStateNotFound` (full resync needed). The control API can expire
  every token of a mailbox.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from devtools.graph_emulator.app import Ctx
from devtools.graph_emulator.calendar_store import MailboxCalendar
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.event_model import RenderOptions, StoredEvent, render
from devtools.graph_emulator.event_query import window
from devtools.graph_emulator.identity import b64url
from devtools.graph_emulator.time_zones import format_offset

DEFAULT_PAGE_SIZE = 10
MAX_ROUNDS_PER_MAILBOX = 200
_UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search")


@dataclass
class DeltaState:
    """What a token stands for: the window, what the client has seen, and for page tokens the
    items still to send."""
    start: datetime
    end: datetime
    seen: dict[str, str]  # instance id -> changeKey
    seq: int
    pending: list[dict] | None = None


def new_token(start: datetime, end: datetime) -> str:
    payload = json.dumps({"s": format_offset(start), "e": format_offset(end), "n": os.urandom(12).hex()})
    return b64url(payload.encode())


def sync_state_not_found() -> GraphError:
    return GraphError(410, "SyncStateNotFound",
                      "The sync state generation is not found; a full synchronization is required.")


def _store(box: MailboxCalendar, token: str, state: DeltaState) -> None:
    box.delta_rounds[token] = state
    while len(box.delta_rounds) > MAX_ROUNDS_PER_MAILBOX:
        box.delta_rounds.pop(next(iter(box.delta_rounds)))


EVENT_TYPE = "#microsoft.graph.event"


def removed(item_id: str) -> dict:
    return {"@odata.type": EVENT_TYPE, "id": item_id, "@removed": {"reason": "deleted"}}


def expire_tokens(box: MailboxCalendar) -> int:
    count = len(box.delta_rounds)
    box.delta_rounds.clear()
    return count


def page_size(ctx: Ctx) -> tuple[int, str | None]:
    raw = ctx.prefer("odata.maxpagesize")
    if raw is None:
        return DEFAULT_PAGE_SIZE, None
    try:
        size = int(raw)
    except ValueError:
        return DEFAULT_PAGE_SIZE, None
    return (size, f"odata.maxpagesize={size}") if size > 0 else (DEFAULT_PAGE_SIZE, None)


def delta_page(ctx: Ctx, box: MailboxCalendar, link_base: str, options: RenderOptions, seq_now: int) -> dict:
    """One response of a delta round for `box` (caller holds the world lock)."""
    args = {k.lower(): v for k, v in ctx.request.args.items()}
    for name in _UNSUPPORTED:
        if name in args:
            raise GraphError(400, "BadRequest", f"The query parameter '{name}' is not supported with change tracking over calendarView.")
    size, _ = page_size(ctx)
    skip_token, delta_token = args.get("$skiptoken"), args.get("$deltatoken")
    if skip_token is not None:
        state = box.delta_rounds.get(skip_token)
        if state is None or state.pending is None:
            raise sync_state_not_found()
        return _serve(box, link_base, state.pending, state, size)
    if delta_token is not None:
        previous = box.delta_rounds.get(delta_token)
        if previous is None or previous.pending is not None:
            raise sync_state_not_found()
        start, end, seen, since = previous.start, previous.end, previous.seen, previous.seq
    else:
        start, end = window(ctx)
        seen, since = {}, None
    current = box.instances_between(start, end)
    items = _changes(box, current, seen, since, options)
    final = DeltaState(start, end, {e.id: e.change_key for e in current}, seq_now)
    return _serve(box, link_base, items, final, size)


def _changes(box: MailboxCalendar, current: list[StoredEvent], seen: dict[str, str], since: int | None,
             options: RenderOptions) -> list[dict]:
    present = {e.id for e in current}
    # Graph's delta pages type every item, changed ones as well as removed ones (event-delta).
    items = [{"@odata.type": EVENT_TYPE, **render(e, options)} for e in current if seen.get(e.id) != e.change_key]
    items += [removed(item_id) for item_id in seen if item_id not in present]
    if since is not None:
        outside = [item_id for item_id, (seq, is_master) in box.touched.items()
                   if seq > since and not is_master and item_id not in present and item_id not in seen]
        items += [removed(item_id) for item_id in outside]
    return items


def _serve(box: MailboxCalendar, link_base: str, items: list[dict], final: DeltaState, size: int) -> dict:
    body: dict = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)"}
    if len(items) > size:
        token = new_token(final.start, final.end)
        _store(box, token, DeltaState(final.start, final.end, final.seen, final.seq, pending=items[size:]))
        body["@odata.nextLink"] = f"{link_base}?$skiptoken={quote(token)}"
        body["value"] = items[:size]
        return body
    token = new_token(final.start, final.end)
    _store(box, token, DeltaState(final.start, final.end, final.seen, final.seq))
    body["@odata.deltaLink"] = f"{link_base}?$deltatoken={quote(token)}"
    body["value"] = items
    return body
