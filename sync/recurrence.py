"""Recurring reservations: Graph's patternedRecurrence, checked and expanded into occurrences.

Expansion happens on wall-clock times in the series' IANA zone (python-dateutil's rrule over
naive local times, then zoneinfo), so a weekly 09:00 meeting stays at 09:00 local across a
DST change while its UTC time moves. Windows zone names, which Graph hands out, are mapped to
IANA names with the table tzlocal maintains (CLDR's windowsZones), never a hand-written one.

Outlook's rules that rrule does not have by itself:
- `absoluteMonthly`/`absoluteYearly` on day 29-31 fall on the month's last day when it is
  shorter (day 31 in April is 30 April): the candidate days 28..N with `bysetpos=-1`;
- `index` (first..fourth, last) picks among the days of `daysOfWeek` in the month (`bysetpos`);
- the range's `startDate` must be the first occurrence's local date and `endDate` is inclusive.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule
from tzlocal.windows_tz import win_tz

from sync.validation import Problem, invalid, malformed, reject_unknown

PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
RANGE_TYPES = ("endDate", "numbered", "noEnd")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEXES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_WEEKDAYS = (rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU)
_PATTERN_FIELDS = frozenset({"type", "interval", "daysOfWeek", "dayOfMonth", "month", "index", "firstDayOfWeek"})
_RANGE_FIELDS = frozenset({"type", "startDate", "endDate", "numberOfOccurrences", "recurrenceTimeZone"})


def zone_named(name: str, field: str = "time_zone") -> ZoneInfo:
    """An IANA zone from an IANA or Windows name (422 naming `field` when neither)."""
    text = (name or "").strip()
    iana = win_tz.get(text, text)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(field, f"{text!r} is not a known IANA or Windows time zone") from None


def iana_name(name: str) -> str:
    return zone_named(name).key


@dataclass(frozen=True)
class Recurrence:
    """A checked patternedRecurrence (Graph's field names kept in `as_graph`)."""

    type: str
    interval: int
    days_of_week: tuple[str, ...] = ()
    day_of_month: int | None = None
    month: int | None = None
    index: str | None = None
    first_day_of_week: str = "sunday"
    range_type: str = "noEnd"
    start_date: date | None = None
    end_date: date | None = None
    count: int | None = None

    @property
    def bounded(self) -> bool:
        return self.range_type != "noEnd"

    def as_graph(self, start_date: date) -> dict[str, Any]:
        pattern: dict[str, Any] = {"type": self.type, "interval": self.interval}
        if self.days_of_week:
            pattern["daysOfWeek"] = list(self.days_of_week)
        if self.type == "weekly":
            pattern["firstDayOfWeek"] = self.first_day_of_week
        if self.day_of_month is not None:
            pattern["dayOfMonth"] = self.day_of_month
        if self.month is not None:
            pattern["month"] = self.month
        if self.index is not None:
            pattern["index"] = self.index
        span: dict[str, Any] = {"type": self.range_type, "startDate": start_date.isoformat()}
        if self.end_date is not None:
            span["endDate"] = self.end_date.isoformat()
        if self.count is not None:
            span["numberOfOccurrences"] = self.count
        return {"pattern": pattern, "range": span}


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(field, f"{field}: must be a whole number")
    if not low <= value <= high:
        raise invalid(field, f"must be from {low} to {high}")
    return value


def _day_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or value.lower() not in DAYS:
        raise invalid(field, f"must be one of {', '.join(DAYS)}")
    return value.lower()


def _date(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise malformed(field, f"{field}: must be a date string YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "must be a date YYYY-MM-DD") from None


def parse_recurrence(data: Any, first_local_date: date, field: str = "recurrence") -> Recurrence:
    """Checks a patternedRecurrence; every refusal names the exact field (400 or 422)."""
    if not isinstance(data, Mapping):
        raise malformed(field, f"{field}: must be an object with pattern and range")
    reject_unknown(data, frozenset({"pattern", "range"}), prefix=f"{field}.")
    pattern, span = data.get("pattern"), data.get("range")
    if not isinstance(pattern, Mapping):
        raise malformed(f"{field}.pattern", f"{field}.pattern: required, an object")
    if not isinstance(span, Mapping):
        raise malformed(f"{field}.range", f"{field}.range: required, an object")
    reject_unknown(pattern, _PATTERN_FIELDS, prefix=f"{field}.pattern.")
    reject_unknown(span, _RANGE_FIELDS, prefix=f"{field}.range.")
    p = f"{field}.pattern."
    kind = pattern.get("type")
    if kind not in PATTERN_TYPES:
        raise invalid(p + "type", f"must be one of {', '.join(PATTERN_TYPES)}")
    interval = _whole(pattern.get("interval", 1), p + "interval", 1, 99)
    days: tuple[str, ...] = ()
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        raw_days = pattern.get("daysOfWeek")
        if not isinstance(raw_days, list) or not raw_days:
            raise invalid(p + "daysOfWeek", f"required for {kind}: a list of day names")
        days = tuple(dict.fromkeys(_day_name(d, f"{p}daysOfWeek[{n}]") for n, d in enumerate(raw_days)))
    elif pattern.get("daysOfWeek"):
        raise invalid(p + "daysOfWeek", f"not used by {kind}")
    day_of_month = None
    if kind in ("absoluteMonthly", "absoluteYearly"):
        if "dayOfMonth" not in pattern:
            raise invalid(p + "dayOfMonth", f"required for {kind}")
        day_of_month = _whole(pattern["dayOfMonth"], p + "dayOfMonth", 1, 31)
    month = None
    if kind in ("absoluteYearly", "relativeYearly"):
        if "month" not in pattern:
            raise invalid(p + "month", f"required for {kind}")
        month = _whole(pattern["month"], p + "month", 1, 12)
    index = None
    if kind in ("relativeMonthly", "relativeYearly"):
        index = pattern.get("index", "first")
        if index not in INDEXES:
            raise invalid(p + "index", f"must be one of {', '.join(INDEXES)}")
    first_day = _day_name(pattern.get("firstDayOfWeek", "sunday"), p + "firstDayOfWeek")

    r = f"{field}.range."
    range_type = span.get("type")
    if range_type not in RANGE_TYPES:
        raise invalid(r + "type", f"must be one of {', '.join(RANGE_TYPES)}")
    start_date = _date(span["startDate"], r + "startDate") if "startDate" in span else first_local_date
    if start_date != first_local_date:
        raise invalid(r + "startDate", f"must be the start's local date ({first_local_date.isoformat()})")
    end_date = count = None
    if range_type == "endDate":
        if "endDate" not in span:
            raise invalid(r + "endDate", "required for an endDate range")
        end_date = _date(span["endDate"], r + "endDate")
        if end_date < start_date:
            raise invalid(r + "endDate", "is before the range's startDate")
    if range_type == "numbered":
        if "numberOfOccurrences" not in span:
            raise invalid(r + "numberOfOccurrences", "required for a numbered range")
        count = _whole(span["numberOfOccurrences"], r + "numberOfOccurrences", 1, 100_000)
    return Recurrence(type=kind, interval=interval, days_of_week=days, day_of_month=day_of_month, month=month,
                      index=index, first_day_of_week=first_day, range_type=range_type, start_date=start_date,
                      end_date=end_date, count=count)


def recurrence_from_graph(data: Mapping[str, Any], first_local_date: date) -> Recurrence:
    return parse_recurrence(data, first_local_date)


def _rule(rec: Recurrence, first: datetime) -> rrule.rrule:
    """The rrule over naive local wall times starting at `first`."""
    common: dict[str, Any] = {"dtstart": first, "interval": rec.interval}
    if rec.count is not None:
        common["count"] = rec.count
    if rec.end_date is not None:
        common["until"] = datetime.combine(rec.end_date, time(23, 59, 59))
    weekdays = [_WEEKDAYS[DAYS.index(d)] for d in rec.days_of_week]
    if rec.type == "daily":
        return rrule.rrule(rrule.DAILY, **common)
    if rec.type == "weekly":
        return rrule.rrule(rrule.WEEKLY, byweekday=weekdays, wkst=DAYS.index(rec.first_day_of_week), **common)
    if rec.type in ("absoluteMonthly", "absoluteYearly"):
        freq = rrule.MONTHLY if rec.type == "absoluteMonthly" else rrule.YEARLY
        month = {"bymonth": rec.month} if rec.month else {}
        day = rec.day_of_month or 1
        if day <= 28:
            return rrule.rrule(freq, bymonthday=day, **month, **common)
        return rrule.rrule(freq, bymonthday=list(range(28, day + 1)), bysetpos=-1, **month, **common)
    freq = rrule.MONTHLY if rec.type == "relativeMonthly" else rrule.YEARLY
    month = {"bymonth": rec.month} if rec.month else {}
    return rrule.rrule(freq, byweekday=weekdays, bysetpos=INDEXES[rec.index or "first"], **month, **common)


def local_starts(rec: Recurrence, first: datetime) -> Iterator[datetime]:
    """Naive local start times of every occurrence, in order (endless for noEnd).

    Occurrences before `first` on its own date are skipped (Outlook starts with the event)."""
    for moment in _rule(rec, first):
        if moment >= first:
            yield moment


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall time in `zone` as UTC. A time skipped by a spring-forward gap moves forward by
    the gap (as Outlook shows it); an ambiguous autumn time is its first occurrence."""
    return local.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # UTC
    end: datetime  # UTC: start + the duration (a meeting spanning a DST change lasts as long)
    local_start: datetime  # naive wall time in the series' zone


def occurrences(rec: Recurrence, first: datetime, duration: timedelta, zone: ZoneInfo, *,
                after: datetime | None = None, until: datetime, limit: int | None = None) -> list[Occurrence]:
    """Occurrences starting in (after, until) UTC, at most `limit` of them.

    `first` is the first occurrence's naive local wall time."""
    found: list[Occurrence] = []
    for local in local_starts(rec, first):
        start = to_utc(local, zone)
        if start >= until:
            break
        if after is not None and start <= after:
            continue
        found.append(Occurrence(start=start, end=start + duration, local_start=local))
        if limit is not None and len(found) >= limit:
            break
    return found


def count_at_most(rec: Recurrence, first: datetime, maximum: int) -> int:
    """How many occurrences a bounded series has, counting no further than maximum + 1."""
    seen = 0
    for _ in local_starts(rec, first):
        seen += 1
        if seen > maximum:
            break
    return seen


def check_bounds(rec: Recurrence, first: datetime, maximum: int, field: str = "recurrence") -> None:
    """A bounded series must name at least one occurrence and at most `maximum`."""
    if rec.count is not None and rec.count > maximum:
        raise invalid(f"{field}.range.numberOfOccurrences", f"at most {maximum} occurrences are allowed")
    if not rec.bounded:
        if next(iter(local_starts(rec, first)), None) is None:
            raise invalid(f"{field}.pattern", "names no occurrence")
        return
    seen = count_at_most(rec, first, maximum)
    if seen == 0:
        raise Problem(422, "invalid_field", f"{field}: the pattern and range name no occurrence",
                      field=f"{field}.pattern")
    if seen > maximum:
        raise invalid(f"{field}.range", f"names more than {maximum} occurrences; shorten the range")
