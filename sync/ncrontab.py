"""NCRONTAB schedules as the Functions timer trigger reads them, in UTC: the one parser of the app.

Settings check the schedule settings with it, so a schedule the host would refuse or never fire
stops start-up; the local host fires its timers with it, so what runs locally is what settings
accepted. Six fields `{second} {minute} {hour} {day-of-month} {month} {day-of-week}` (five mean
second 0). Each field takes `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from a
to the maximum), and comma lists of those. Months and days of the week also take names (any
prefix of the English name, case-insensitive: `Jan`, `MON`, `Tuesday`). Day of week runs 0-6
with Sunday = 0. As in NCrontab (the library behind the real timer trigger), a day must match
both the day-of-month and the day-of-week field. A schedule whose days exist in none of its
months (`0 0 0 31 2 *`) is refused: it would never fire.

Pure: no clock, no environment, no settings (`%NAME%` references are the caller's to resolve).
"""
from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True)
class _FieldKind:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()


SECOND = _FieldKind("second", 0, 59)
MINUTE = _FieldKind("minute", 0, 59)
HOUR = _FieldKind("hour", 0, 23)
DAY = _FieldKind("day-of-month", 1, 31)
MONTH = _FieldKind("month", 1, 12, MONTH_NAMES)
WEEKDAY = _FieldKind("day-of-week", 0, 6, WEEKDAY_NAMES)

SIX_FIELDS = (SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY)


class ScheduleError(ValueError):
    """A schedule expression that cannot be read; the message names the expression and the field."""


def _parse_value(text: str, kind: _FieldKind) -> int:
    if not text:
        raise ValueError("a list item or range end is empty")
    if text.isdigit():
        value = int(text)
    elif kind.names and text.isalpha():
        matches = [i for i, name in enumerate(kind.names) if name.lower().startswith(text.lower())]
        if not matches:
            raise ValueError(f"unknown name '{text}' (use one of {', '.join(kind.names)})")
        value = kind.low + matches[0]
    else:
        raise ValueError(f"'{text}' is not a number")
    if not kind.low <= value <= kind.high:
        raise ValueError(f"{value} is outside {kind.low}-{kind.high}")
    return value


def _parse_item(item: str, kind: _FieldKind) -> set[int]:
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(f"step '{step_text}' must be a positive number")
        step = int(step_text)
    if body == "*":
        first, last = kind.low, kind.high
    elif "-" in body:
        first_text, _, last_text = body.partition("-")
        first, last = _parse_value(first_text, kind), _parse_value(last_text, kind)
        if first > last:
            raise ValueError(f"range {body} runs backwards")
    else:
        first = _parse_value(body, kind)
        last = kind.high if slash else first
    return set(range(first, last + 1, step))


def _parse_field(text: str, kind: _FieldKind, expression: str) -> tuple[int, ...]:
    values: set[int] = set()
    try:
        for item in text.split(","):
            values |= _parse_item(item.strip(), kind)
    except ValueError as exc:
        raise ScheduleError(f"schedule '{expression}': {kind.label} field '{text}' is invalid: {exc}") from None
    return tuple(sorted(values))


_LEAP_YEAR = 2000  # February 29 exists, so `0 0 0 29 2 *` fires (every four years)


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the allowed values of each field, sorted."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]

    def matches(self, moment: datetime) -> bool:
        """True when the moment (UTC, whole second) is an occurrence of the schedule."""
        moment = _as_naive_utc(moment)
        return (
            moment.microsecond == 0
            and moment.second in self.seconds
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and self.matches_day(moment.date())
        )

    def matches_day(self, day: date) -> bool:
        return day.month in self.months and day.day in self.days and _cron_weekday(day) in self.weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly later than `moment`.

        A naive datetime is read as UTC and a naive one comes back; an aware one comes back
        as an aware UTC datetime.
        """
        aware = moment.tzinfo is not None
        start = _as_naive_utc(moment).replace(microsecond=0) + timedelta(seconds=1)
        found = self._first_at_or_after(start)
        return found.replace(tzinfo=timezone.utc) if aware else found

    def _first_at_or_after(self, start: datetime) -> datetime:
        year, month, day_from = start.year, start.month, start.day
        clock_from: time | None = start.time()
        while year <= datetime.max.year:
            if month in self.months:
                last_day = _days_in_month(year, month)
                for day in self.days[bisect.bisect_left(self.days, day_from):]:
                    if day > last_day:
                        break
                    candidate = date(year, month, day)
                    if _cron_weekday(candidate) not in self.weekdays:
                        continue
                    same_day = clock_from is not None and candidate == start.date()
                    at = self._first_time_from(clock_from if same_day else time(0, 0, 0))
                    if at is not None:
                        return datetime.combine(candidate, at)
            month, day_from, clock_from = month + 1, 1, None
            if month > 12:
                year, month = year + 1, 1
        raise ScheduleError(f"schedule '{self.expression}' has no occurrence before year {datetime.max.year}")

    def _first_time_from(self, earliest: time) -> time | None:
        """The first time of day at or after `earliest` allowed by the hour/minute/second fields."""
        for hour in self.hours[bisect.bisect_left(self.hours, earliest.hour):]:
            minute_from = earliest.minute if hour == earliest.hour else 0
            for minute in self.minutes[bisect.bisect_left(self.minutes, minute_from):]:
                second_from = earliest.second if (hour, minute) == (earliest.hour, earliest.minute) else 0
                index = bisect.bisect_left(self.seconds, second_from)
                if index < len(self.seconds):
                    return time(hour, minute, self.seconds[index])
        return None


def _cron_weekday(day: date) -> int:
    """Day of week with Sunday = 0 (Python's weekday() has Monday = 0)."""
    return (day.weekday() + 1) % 7


def _as_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def parse(expression: str) -> Schedule:
    """Read a five- or six-field NCRONTAB expression; raises ScheduleError, one line naming the
    expression and what is wrong with it."""
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ScheduleError(
            f"schedule '{expression}' has {len(fields)} fields, not six "
            "({second} {minute} {hour} {day-of-month} {month} {day-of-week}) or five (without seconds)"
        )
    seconds, minutes, hours, days, months, weekdays = (
        _parse_field(text, kind, expression) for text, kind in zip(fields, SIX_FIELDS)
    )
    if not any(day <= _days_in_month(_LEAP_YEAR, month) for month in months for day in days):
        raise ScheduleError(
            f"schedule '{expression}' names no day that exists in its months, so it would never fire"
        )
    return Schedule(expression, seconds, minutes, hours, days, months, weekdays)


def next_after(expression: str | Schedule, moment: datetime) -> datetime:
    """The first occurrence of the schedule strictly later than `moment` (see Schedule.next_after)."""
    schedule = expression if isinstance(expression, Schedule) else parse(expression)
    return schedule.next_after(moment)
