"""Graph recurrence patterns, expanded the way Outlook does (pure: no emulator state).

A recurrence is `{"pattern": {...}, "range": {...}}` (Graph `patternedRecurrence`):
- pattern `type`: daily | weekly | absoluteMonthly | relativeMonthly | absoluteYearly |
  relativeYearly, with `interval` (required, >= 1), `daysOfWeek` (weekly and relative types),
  `firstDayOfWeek` (weekly; default sunday), `dayOfMonth` (absolute types), `month` (yearly
  types) and `index` (first|second|third|fourth|last; relative types).
- range `type`: endDate | noEnd | numbered, with `startDate`, `endDate` (inclusive),
  `numberOfOccurrences` and `recurrenceTimeZone`.

Dates come out in order, never before `startDate`. Outlook books a `dayOfMonth` the month lacks
(31 in April, 29 February in other years) on the month's last day. Wall-clock times are kept in
the series' zone, so a 09:00 meeting stays at 09:00 local across DST changes.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # date.weekday() order
INDEXES = ("first", "second", "third", "fourth", "last")
PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
RANGE_TYPES = ("endDate", "noEnd", "numbered")
_NO_DATE = "0001-01-01"


class RecurrenceError(ValueError):
    """The recurrence cannot be used (Graph answers such requests with a 400)."""


@dataclass(frozen=True)
class Pattern:
    type: str
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    first_day_of_week: str = "sunday"
    day_of_month: int = 0
    month: int = 0
    index: str = "first"


@dataclass(frozen=True)
class Range:
    type: str
    start_date: date
    end_date: date | None = None
    number_of_occurrences: int = 0
    time_zone: str | None = None


@dataclass(frozen=True)
class Recurrence:
    pattern: Pattern
    range: Range

    @classmethod
    def from_graph(cls, data: object) -> "Recurrence":
        if not isinstance(data, dict):
            raise RecurrenceError("recurrence must be an object with pattern and range")
        return cls(_parse_pattern(data.get("pattern")), _parse_range(data.get("range")))

    def to_graph(self) -> dict:
        """Graph's read form: every field present, unused ones at their zero values."""
        p, r = self.pattern, self.range
        return {
            "pattern": {
                "type": p.type, "interval": p.interval, "month": p.month, "dayOfMonth": p.day_of_month,
                "daysOfWeek": list(p.days_of_week), "firstDayOfWeek": p.first_day_of_week, "index": p.index,
            },
            "range": {
                "type": r.type, "startDate": r.start_date.isoformat(),
                "endDate": r.end_date.isoformat() if r.end_date else _NO_DATE,
                "recurrenceTimeZone": r.time_zone or "", "numberOfOccurrences": r.number_of_occurrences,
            },
        }

    def with_start_date(self, start_date: date) -> "Recurrence":
        r = self.range
        return Recurrence(self.pattern, Range(r.type, start_date, r.end_date, r.number_of_occurrences, r.time_zone))

    @property
    def is_endless(self) -> bool:
        return self.range.type == "noEnd"


# ---- parsing ------------------------------------------------------------------------------------

def _int(value: object, name: str, default: int | None = None) -> int:
    if value is None:
        if default is None:
            raise RecurrenceError(f"{name} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecurrenceError(f"{name} must be an integer")
    return value


def _positive_int(value: object, name: str) -> int:
    number = _int(value, name)
    if number < 1:
        raise RecurrenceError(f"{name} must be at least 1")
    return number


def _kind(data: object, name: str, kinds: tuple[str, ...]) -> str:
    """The `type` of the object at `name` (pattern or range), which must be one of `kinds`."""
    if not isinstance(data, dict):
        raise RecurrenceError(f"{name} is required")
    kind = data.get("type")
    if kind not in kinds:
        raise RecurrenceError(f"{name}.type is invalid: {kind!r}")
    return kind


def _weekday(value: object, name: str) -> str:
    if not isinstance(value, str) or value.lower() not in WEEKDAYS:
        raise RecurrenceError(f"{name} has an invalid day of week: {value!r}")
    return value.lower()


def _parse_pattern(data: Any) -> Pattern:
    kind = _kind(data, "recurrence.pattern", PATTERN_TYPES)
    interval = _positive_int(data.get("interval"), "recurrence.pattern.interval")
    days = data.get("daysOfWeek") or []
    if not isinstance(days, list):
        raise RecurrenceError("recurrence.pattern.daysOfWeek must be a list")
    days_of_week = tuple(dict.fromkeys(_weekday(d, "recurrence.pattern.daysOfWeek") for d in days))
    first_day = _weekday(data.get("firstDayOfWeek") or "sunday", "recurrence.pattern.firstDayOfWeek")
    index = data.get("index") or "first"
    if index not in INDEXES:
        raise RecurrenceError(f"recurrence.pattern.index is invalid: {index!r}")
    day_of_month = _int(data.get("dayOfMonth"), "recurrence.pattern.dayOfMonth", 0)
    month = _int(data.get("month"), "recurrence.pattern.month", 0)
    if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days_of_week:
        raise RecurrenceError(f"recurrence.pattern.daysOfWeek is required for {kind}")
    if kind in ("absoluteMonthly", "absoluteYearly") and not 1 <= day_of_month <= 31:
        raise RecurrenceError(f"recurrence.pattern.dayOfMonth must be 1-31 for {kind}")
    if kind in ("absoluteYearly", "relativeYearly") and not 1 <= month <= 12:
        raise RecurrenceError(f"recurrence.pattern.month must be 1-12 for {kind}")
    return Pattern(kind, interval, days_of_week, first_day, day_of_month, month, index)


def _date(value: object, name: str) -> date:
    if not isinstance(value, str):
        raise RecurrenceError(f"{name} is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise RecurrenceError(f"{name} is not a date: {value!r}") from None


def _parse_range(data: Any) -> Range:
    kind = _kind(data, "recurrence.range", RANGE_TYPES)
    start = _date(data.get("startDate"), "recurrence.range.startDate")
    end = None
    count = 0
    if kind == "endDate":
        end = _date(data.get("endDate"), "recurrence.range.endDate")
        if end < start:
            raise RecurrenceError("recurrence.range.endDate is before startDate")
    elif kind == "numbered":
        count = _positive_int(data.get("numberOfOccurrences"), "recurrence.range.numberOfOccurrences")
    zone = data.get("recurrenceTimeZone") or None
    return Range(kind, start, end, count, zone)


# ---- expansion -----------------------------------------------------------------------------------

def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + months
    return total // 12, total % 12 + 1


def _relative_day(year: int, month: int, days: tuple[str, ...], index: str) -> date:
    """The index-th day of the month whose weekday is one of `days` ("first weekday" etc.)."""
    wanted = {WEEKDAYS.index(d) for d in days}
    matches = [date(year, month, n) for n in range(1, _last_day(year, month) + 1)
               if date(year, month, n).weekday() in wanted]
    return matches[-1] if index == "last" else matches[INDEXES.index(index)]


def _day_in(p: Pattern, year: int, month: int) -> date:
    if p.type in ("absoluteMonthly", "absoluteYearly"):
        return date(year, month, min(p.day_of_month, _last_day(year, month)))
    return _relative_day(year, month, p.days_of_week, p.index)


def _candidates(rec: Recurrence) -> Iterator[date]:
    """Dates matching the pattern from the start date on, unbounded (until year 9999)."""
    p, start = rec.pattern, rec.range.start_date
    try:
        if p.type == "daily":
            day = start
            while True:
                yield day
                day += timedelta(days=p.interval)
        elif p.type == "weekly":
            first = WEEKDAYS.index(p.first_day_of_week)
            week = start - timedelta(days=(start.weekday() - first) % 7)
            offsets = sorted((WEEKDAYS.index(d) - first) % 7 for d in p.days_of_week)
            while True:
                for offset in offsets:
                    day = week + timedelta(days=offset)
                    if day >= start:
                        yield day
                week += timedelta(weeks=p.interval)
        else:
            monthly = p.type in ("absoluteMonthly", "relativeMonthly")
            unit = 1 if monthly else 12
            year, month = start.year, start.month if monthly else p.month
            if _day_in(p, year, month) < start:
                # The series is anchored on its first matching date on or after the start date.
                year, month = _add_months(year, month, unit)
            while True:
                yield _day_in(p, year, month)
                year, month = _add_months(year, month, unit * p.interval)
    except (OverflowError, ValueError):
        return


def occurrence_dates(rec: Recurrence) -> Iterator[date]:
    """Every occurrence date of the series, in order, honouring the range."""
    r = rec.range
    for count, day in enumerate(_candidates(rec), start=1):
        if r.type == "endDate" and r.end_date is not None and day > r.end_date:
            return
        yield day
        if r.type == "numbered" and count >= r.number_of_occurrences:
            return


def localize(day: date, wall_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a date in `zone` (a time skipped by a DST gap
    is read with the offset before the gap, i.e. it lands one hour later)."""
    return datetime.combine(day, wall_time).replace(tzinfo=zone).astimezone(timezone.utc)


def occurrence_starts(rec: Recurrence, wall_time: time, zone: ZoneInfo) -> Iterator[datetime]:
    """UTC start instants of every occurrence, in order."""
    for day in occurrence_dates(rec):
        yield localize(day, wall_time, zone)


def starts_overlapping(rec: Recurrence, wall_time: time, zone: ZoneInfo, duration: timedelta,
                       window_start: datetime, window_end: datetime) -> list[datetime]:
    """UTC starts of the occurrences that overlap [window_start, window_end)."""
    found = []
    for start in occurrence_starts(rec, wall_time, zone):
        if start >= window_end:
            break
        end = start + duration
        if end > window_start or (duration == timedelta(0) and start >= window_start):
            found.append(start)
    return found


def last_occurrence_date(rec: Recurrence) -> date | None:
    """The final occurrence date, or None for an endless series."""
    if rec.is_endless:
        return None
    last = None
    for last in occurrence_dates(rec):
        pass
    return last
