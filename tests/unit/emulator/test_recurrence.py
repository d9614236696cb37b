"""Recurrence expansion checked against a day-by-day oracle written from the pattern definitions,
plus numbered ranges, end dates and wall-clock times across DST changes."""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.graph_emulator.recurrence import (
    INDEXES, WEEKDAYS, Recurrence, RecurrenceError, last_occurrence_date, occurrence_dates,
    occurrence_starts, starts_overlapping,
)

DAY_NAMES = list(WEEKDAYS)


# ---- an independent oracle: does `day` belong to the series? ----------------------------------------

def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _nth_matching(year: int, month: int, days: set[int], index: str) -> date:
    matching = [date(year, month, n) for n in range(1, _last_day(year, month) + 1)
                if date(year, month, n).weekday() in days]
    return matching[-1] if index == "last" else matching[INDEXES.index(index)]


def _month_rule(pattern: dict, year: int, month: int) -> date:
    if pattern["type"].startswith("absolute"):
        return date(year, month, min(pattern["dayOfMonth"], _last_day(year, month)))
    return _nth_matching(year, month, {DAY_NAMES.index(d) for d in pattern["daysOfWeek"]}, pattern["index"])


def matches_pattern(pattern: dict, start: date, day: date) -> bool:
    kind, interval = pattern["type"], pattern["interval"]
    if day < start:
        return False
    if kind == "daily":
        return (day - start).days % interval == 0
    if kind == "weekly":
        first = DAY_NAMES.index(pattern.get("firstDayOfWeek", "sunday"))
        week_of = lambda d: d - timedelta(days=(d.weekday() - first) % 7)  # noqa: E731
        weeks = (week_of(day) - week_of(start)).days // 7
        return DAY_NAMES[day.weekday()] in pattern["daysOfWeek"] and weeks % interval == 0
    yearly = kind.endswith("Yearly")
    if yearly and day.month != pattern["month"]:
        return False
    if day != _month_rule(pattern, day.year, day.month):
        return False
    # The series is anchored on the first matching month (or year) on or after the start date.
    anchor_year, anchor_month = start.year, (pattern["month"] if yearly else start.month)
    if _month_rule(pattern, anchor_year, anchor_month) < start:
        anchor_year, anchor_month = (anchor_year + 1, anchor_month) if yearly else (
            (anchor_year + anchor_month // 12, anchor_month % 12 + 1))
    if yearly:
        return (day.year - anchor_year) % interval == 0 and day.year >= anchor_year
    months = (day.year - anchor_year) * 12 + day.month - anchor_month
    return months >= 0 and months % interval == 0


# ---- strategies ---------------------------------------------------------------------------------------

weekday_sets = st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True)


@st.composite
def patterns(draw) -> dict:
    kind = draw(st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly",
                                 "relativeYearly"]))
    pattern: dict = {"type": kind, "interval": draw(st.integers(1, 4))}
    if kind == "weekly":
        pattern["daysOfWeek"] = draw(weekday_sets)
        pattern["firstDayOfWeek"] = draw(st.sampled_from(DAY_NAMES))
    if kind in ("relativeMonthly", "relativeYearly"):
        pattern["daysOfWeek"] = draw(weekday_sets)
        pattern["index"] = draw(st.sampled_from(INDEXES))
    if kind in ("absoluteMonthly", "absoluteYearly"):
        pattern["dayOfMonth"] = draw(st.integers(1, 31))
    if kind.endswith("Yearly"):
        pattern["month"] = draw(st.integers(1, 12))
    return pattern


start_dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def _series(pattern: dict, start: date, range_: dict) -> Recurrence:
    return Recurrence.from_graph({"pattern": pattern, "range": {"startDate": start.isoformat(), **range_}})


def _horizon(pattern: dict) -> int:
    """Days to scan so a handful of occurrences certainly fall inside."""
    return {"daily": 40, "weekly": 70}.get(pattern["type"], 400 if "Monthly" in pattern["type"] else 1900) * pattern["interval"]


# ---- properties ----------------------------------------------------------------------------------------

@settings(max_examples=250, deadline=None)
@given(patterns(), start_dates)
def test_occurrences_are_exactly_the_days_the_pattern_allows(pattern, start):
    end = start + timedelta(days=_horizon(pattern))
    series = _series(pattern, start, {"type": "endDate", "endDate": end.isoformat()})
    generated = list(occurrence_dates(series))
    expected = [start + timedelta(days=n) for n in range((end - start).days + 1)
                if matches_pattern(pattern, start, start + timedelta(days=n))]
    assert generated == expected
    assert generated, "the horizon always holds at least one occurrence"


@settings(max_examples=150, deadline=None)
@given(patterns(), start_dates, st.integers(1, 30))
def test_numbered_range_yields_exactly_that_many_in_order(pattern, start, count):
    series = _series(pattern, start, {"type": "numbered", "numberOfOccurrences": count})
    dates = list(occurrence_dates(series))
    assert len(dates) == count
    assert dates == sorted(set(dates))
    assert all(matches_pattern(pattern, start, d) for d in dates)
    assert last_occurrence_date(series) == dates[-1]


@settings(max_examples=100, deadline=None)
@given(patterns(), start_dates)
def test_endless_series_keeps_going(pattern, start):
    series = _series(pattern, start, {"type": "noEnd"})
    first_twelve = []
    for day in occurrence_dates(series):
        first_twelve.append(day)
        if len(first_twelve) == 12:
            break
    assert len(first_twelve) == 12
    assert last_occurrence_date(series) is None


ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Sydney", "America/Sao_Paulo", "Asia/Tokyo", "UTC"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES), st.integers(0, 23), st.sampled_from([0, 15, 30, 45]), start_dates)
def test_wall_clock_time_is_kept_across_dst(zone_name, hour, minute, start):
    zone = ZoneInfo(zone_name)
    wall = time(hour, minute)
    series = _series({"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]}, start,
                     {"type": "numbered", "numberOfOccurrences": 60})
    days = list(occurrence_dates(series))
    starts = list(occurrence_starts(series, wall, zone))
    assert len(starts) == len(days) == 60
    for day, instant in zip(days, starts):
        naive = datetime.combine(day, wall)
        round_trip = naive.replace(tzinfo=zone).astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
        if round_trip == naive:  # a time inside a spring-forward gap cannot be kept, every other one is
            assert instant.astimezone(zone).replace(tzinfo=None) == naive
        else:  # it lands one hour later, like Outlook
            assert instant.astimezone(zone).replace(tzinfo=None) - naive == timedelta(hours=1)


def test_a_morning_meeting_moves_in_utc_when_amsterdam_changes_to_summer_time():
    series = _series({"type": "daily", "interval": 1}, date(2026, 3, 27), {"type": "numbered", "numberOfOccurrences": 4})
    starts = list(occurrence_starts(series, time(9, 0), ZoneInfo("Europe/Amsterdam")))
    assert [s.hour for s in starts] == [8, 8, 7, 7]  # CET (UTC+1) until 29 March, then CEST (UTC+2)


def test_day_31_falls_on_the_last_day_of_shorter_months():
    series = _series({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}, date(2026, 1, 1),
                     {"type": "numbered", "numberOfOccurrences": 4})
    assert list(occurrence_dates(series)) == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_last_friday_of_every_other_month():
    series = _series({"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["friday"], "index": "last"},
                     date(2026, 1, 1), {"type": "numbered", "numberOfOccurrences": 3})
    assert list(occurrence_dates(series)) == [date(2026, 1, 30), date(2026, 3, 27), date(2026, 5, 29)]


def test_end_date_is_inclusive():
    series = _series({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
                     date(2026, 1, 5), {"type": "endDate", "endDate": "2026-01-19"})
    assert list(occurrence_dates(series)) == [date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19)]


def test_overlap_window_uses_the_duration():
    series = _series({"type": "daily", "interval": 1}, date(2026, 1, 1), {"type": "noEnd"})
    hits = starts_overlapping(series, time(10), ZoneInfo("UTC"), timedelta(hours=2),
                              datetime(2026, 1, 3, 11, tzinfo=timezone.utc), datetime(2026, 1, 4, 10, tzinfo=timezone.utc))
    assert hits == [datetime(2026, 1, 3, 10, tzinfo=timezone.utc)]


@pytest.mark.parametrize("pattern, range_, fragment", [
    ({"type": "weekly", "interval": 1}, {"type": "noEnd"}, "daysOfWeek"),
    ({"type": "daily", "interval": 0}, {"type": "noEnd"}, "interval"),
    ({"type": "daily"}, {"type": "noEnd"}, "interval"),
    ({"type": "hourly", "interval": 1}, {"type": "noEnd"}, "type"),
    ({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"}, {"type": "noEnd"}, "index"),
    ({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 3}, {"type": "noEnd"}, "month"),
    ({"type": "daily", "interval": 1}, {"type": "numbered", "numberOfOccurrences": 0}, "numberOfOccurrences"),
    ({"type": "daily", "interval": 1}, {"type": "endDate", "endDate": "2025-12-31"}, "endDate"),
    ({"type": "daily", "interval": 1, "daysOfWeek": ["someday"]}, {"type": "noEnd"}, "daysOfWeek"),
])
def test_invalid_recurrences_are_refused_with_the_field_named(pattern, range_, fragment):
    with pytest.raises(RecurrenceError, match=fragment):
        _series(pattern, date(2026, 1, 1), range_)


def test_read_form_lists_every_field():
    series = _series({"type": "weekly", "interval": 2, "daysOfWeek": ["Monday"]}, date(2026, 1, 5),
                     {"type": "noEnd", "recurrenceTimeZone": "Europe/Amsterdam"})
    assert series.to_graph() == {
        "pattern": {"type": "weekly", "interval": 2, "month": 0, "dayOfMonth": 0, "daysOfWeek": ["monday"],
                    "firstDayOfWeek": "sunday", "index": "first"},
        "range": {"type": "noEnd", "startDate": "2026-01-05", "endDate": "0001-01-01",
                  "recurrenceTimeZone": "Europe/Amsterdam", "numberOfOccurrences": 0},
    }
    assert Recurrence.from_graph(series.to_graph()) == series
