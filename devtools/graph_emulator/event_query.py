"""Query options and response preferences of event requests.

- `$top` (default page 10 for events and calendarView [obs]), `$skip`, `@odata.nextLink` built
  with `$skip`, `$select` (unknown names are a 400), `$filter`, `$orderby`, `$count`.
- `$expand=singleValueExtendedProperties($filter=id eq '...')`: the only way to read an
  extended property back (GRAPH.md 4.5).
- `startDateTime`/`endDateTime` (names case-insensitive; both required; an offset inside the
  value is honoured, none means UTC; not affected by `Prefer: outlook.timezone`).
- `Prefer`: `outlook.timezone` (response zone, echoed in `Preference-Applied`),
  `outlook.body-content-type`, `IdType="ImmutableId"` (ids never change here; echoed).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from devtools.graph_emulator.app import Ctx, raw_path
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.event_model import (
    SELECTABLE, RenderOptions, StoredEvent, normalise_property_id, render, select,
)
from devtools.graph_emulator.odata_filter import CompiledFilter, ExtendedProperty, PropertyId
from devtools.graph_emulator.time_zones import find_zone, parse_local

DEFAULT_PAGE_SIZE = 10
_EXPAND_PROPS = re.compile(r"^singleValueExtendedProperties\((.*)\)$", re.I | re.S)
_ID_EQ = re.compile(r"\bid\s+eq\s+'((?:[^']|'')*)'", re.I)
_IGNORED_EXPANDS = {"attachments", "extensions", "instances", "calendar", "exceptionoccurrences",
                    "multivalueextendedproperties"}


@dataclass
class QueryOptions:
    select: list[str] | None = None
    top: int | None = None
    skip: int = 0
    filter: CompiledFilter | None = None
    expand_property_ids: list[str] | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    count: bool = False


def _arg(args: MultiDict, name: str) -> str | None:
    wanted = name.lower()
    for key in args:
        if key.lower() == wanted:
            return args.get(key)
    return None


def _non_negative(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise GraphError(400, "BadRequest", f"Invalid value '{value}' for query option {name}.")
    return number


def parse_expand(text: str | None) -> list[str] | None:
    if not text:
        return None
    ids: list[str] | None = None
    for part in _split_top_level(text):
        match = _EXPAND_PROPS.match(part.strip())
        if match:
            ids = (ids or []) + [normalise_property_id(raw.replace("''", "'")) for raw in _ID_EQ.findall(match.group(1))]
        elif part.strip().lower() not in _IGNORED_EXPANDS:
            raise GraphError(400, "BadRequest", f"Parsing OData Select and Expand failed: Could not find a property named '{part.strip()}' on type 'microsoft.graph.event'.")
    return ids


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_query(ctx: Ctx) -> QueryOptions:
    args = ctx.request.args
    options = QueryOptions()
    select = _arg(args, "$select")
    if select:
        names = [name.strip() for name in select.split(",") if name.strip()]
        for name in names:
            if name.lower() not in SELECTABLE:
                raise GraphError(400, "RequestBroker--ParseUri",
                                 f"Could not find a property named '{name}' on type 'microsoft.graph.event'.")
        options.select = names
    options.top = _non_negative(_arg(args, "$top"), "$top")
    options.skip = _non_negative(_arg(args, "$skip"), "$skip") or 0
    text = _arg(args, "$filter")
    if text:
        options.filter = CompiledFilter(text, normalise_property_id)
    options.expand_property_ids = parse_expand(_arg(args, "$expand"))
    order = _arg(args, "$orderby")
    if order:
        for part in order.split(","):
            words = part.split()
            if words:
                options.orderby.append((words[0], len(words) > 1 and words[1].lower() == "desc"))
    options.count = (_arg(args, "$count") or "").lower() == "true"
    return options


def render_options(ctx: Ctx, expand_property_ids: list[str] | None = None) -> tuple[RenderOptions, dict[str, str]]:
    """Rendering settings from the Prefer headers, and the Preference-Applied header to echo."""
    options = RenderOptions(expand_property_ids=expand_property_ids)
    applied = []
    zone_name = ctx.prefer("outlook.timezone")
    zone = find_zone(zone_name)
    if zone is not None:
        options.zone_name, options.zone = zone_name, zone
        applied.append(f'outlook.timezone="{zone_name}"')
    body_type = (ctx.prefer("outlook.body-content-type") or "").lower()
    if body_type in ("text", "html"):
        options.body_type = body_type
        applied.append(f'outlook.body-content-type="{body_type}"')
    id_type = ctx.prefer("IdType")
    if id_type and id_type.lower() == "immutableid":
        applied.append('IdType="ImmutableId"')
    return options, ({"Preference-Applied": ", ".join(applied)} if applied else {})


def window(ctx: Ctx) -> tuple[datetime, datetime]:
    """startDateTime/endDateTime, both required (400 naming the missing one)."""
    values = {}
    for name in ("startDateTime", "endDateTime"):
        raw = _arg(ctx.request.args, name)
        if raw is None or not raw.strip():
            raise GraphError(400, "ErrorInvalidParameter",
                             "This request requires a time window specified by the query string parameters "
                             f"StartDateTime and EndDateTime. Missing: {name}.")
        try:
            values[name] = parse_local(raw.replace(" ", "+"), timezone.utc)
        except ValueError:
            raise GraphError(400, "ErrorInvalidParameter", f"The value '{raw}' of parameter '{name}' isn't a valid date and time.") from None
    return values["startDateTime"], values["endDateTime"]


def filter_document(event: StoredEvent) -> dict:
    """What `$filter` sees: the UTC representation plus every extended property."""
    document = render(event, RenderOptions())
    document["singleValueExtendedProperties"] = [
        ExtendedProperty(PropertyId(key), value) for key, (_, value) in event.extended.items()]
    return document


def _path_value(document: dict, path: str) -> Any:
    value: Any = document
    for segment in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == segment.lower()), None)
    return value


def order(events: list[StoredEvent], orderby: list[tuple[str, bool]]) -> list[StoredEvent]:
    if not orderby:
        return events
    documents = {id(e): render(e, RenderOptions()) for e in events}
    result = list(events)
    for path, descending in reversed(orderby):
        present = [e for e in result if _path_value(documents[id(e)], path) is not None]
        missing = [e for e in result if _path_value(documents[id(e)], path) is None]
        present.sort(key=lambda e: _sort_key(_path_value(documents[id(e)], path)), reverse=descending)
        result = present + missing
    return result


def _sort_key(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def page_link(ctx: Ctx, base_url: str, skip: int, top: int) -> str:
    """The nextLink: same path and options, `$skip` moved on."""
    params = [(k, v) for k, v in ctx.request.args.items(multi=True) if k.lower() not in ("$skip", "$top")]
    params += [("$top", str(top)), ("$skip", str(skip))]
    return f"{base_url}{raw_path(ctx.request)}?{urlencode(params, safe='$/@:,()')}"


def collection(ctx: Ctx, events: list[StoredEvent], query: QueryOptions, context: str) -> tuple[dict, dict]:
    """Filters, orders, pages and renders a collection; returns (body, headers)."""
    if query.filter is not None:
        events = [e for e in events if query.filter.matches(filter_document(e))]
    events = order(events, query.orderby)
    top = query.top if query.top is not None else DEFAULT_PAGE_SIZE
    page = events[query.skip:query.skip + top]
    options, headers = render_options(ctx, query.expand_property_ids)
    body: dict[str, Any] = {"@odata.context": context}
    if query.count:
        body["@odata.count"] = len(events)
    body["value"] = [select(render(e, options), query.select) for e in page]
    if query.skip + top < len(events) and top > 0:
        body["@odata.nextLink"] = page_link(ctx, ctx.world.base_url, query.skip + top, top)
    return body, headers
