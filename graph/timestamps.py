"""Graph's timestamps: UTC ISO 8601, with up to 7 fractional digits in responses
("2024-01-10T11:00:00.0000000Z") and sometimes an offset instead of Z."""
from __future__ import annotations

import re
from datetime import datetime, timezone

_FRACTION = re.compile(r"\.(\d+)")


def graph_time(moment: datetime) -> str:
    """UTC ISO 8601 for startDateTime/endDateTime; naive datetimes are refused as ambiguous."""
    if moment.tzinfo is None:
        raise ValueError("use a timezone-aware datetime for Graph time ranges")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_graph_time(text: str) -> datetime:
    """An aware UTC datetime from a Graph timestamp (no zone at all means UTC, as in event
    `start.dateTime` read with `outlook.timezone="UTC"`)."""
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
