"""Recurrence expansion: wall-clock times kept across DST, Outlook's monthly rules, and refusals
that name the field."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.recurrence import (
    DAYS, check_bounds, iana_name, occurrences, parse_recurrence, zone_named,
)
from sync.validation import Problem

FAR = datetime(2030, 1, 1, tzinfo=timezone.utc)


def weekly(day: str, start: date, **range_fields) -> dict:
    span = {"type": "noEnd", "startDate": start.isoformat(), **range_fields}
    return {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day], "firstDayOfWeek": "monday"},
            "range": span}


@pytest.mark.parametrize("zone_name, before, after", [
    ("Europe/Amsterdam", date(2026, 3, 23), date(2026, 3, 30)),   # DST starts 29 March
    ("America/New_York", date(2026, 3, 2), date(2026, 3, 9)),     # DST starts 8 March
    ("Europe/Amsterdam", date(2026, 10, 19), date(2026, 10, 26)),  # DST ends 25 October
])
def test_a_weekly_series_keeps_its_local_time_across_dst(zone_name, before, after):
    zone = ZoneInfo(zone_name)
    first = datetime.combine(before, datetime.min.time()).replace(hour=9)
    rec = parse_recurrence(weekly(DAYS[before.weekday()], before), before)
    found = occurrences(rec, first, timedelta(hours=1), zone, until=datetime(2026, 12, 1, tzinfo=timezone.utc),
                        limit=2)
    assert [o.start.astimezone(zone).strftime("%a %H:%M") for o in found] == [first.strftime("%a 09:00")] * 2
    assert [o.start.astimezone(zone).date() for o in found] == [before, after]
    # the UTC time moved by the hour the clocks moved
    assert abs((found[1].start - found[0].start) - timedelta(days=7)) == timedelta(hours=1)


def test_windows_zone_names_map_through_the_maintained_table():
    assert iana_name("W. Europe Standard Time") in ("Europe/Berlin", "Europe/Amsterdam")
    assert iana_name("Eastern Standard Time") == "America/New_York"
    assert iana_name("Europe/Amsterdam") == "Europe/Amsterdam"
    with pytest.raises(Problem) as refused:
        zone_named("Mars/Olympus", "time_zone")
    assert refused.value.field == "time_zone"


def test_day_31_falls_on_the_last_day_of_shorter_months():
    rec = parse_recurrence({"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
                            "range": {"type": "numbered", "startDate": "2026-01-31", "numberOfOccurrences": 4}},
                           date(2026, 1, 31))
    found = occurrences(rec, datetime(2026, 1, 31, 10), timedelta(minutes=30), ZoneInfo("UTC"), until=FAR)
    assert [o.start.date() for o in found] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31),
                                               date(2026, 4, 30)]


def test_relative_monthly_last_friday_and_numbered_range():
    rec = parse_recurrence({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"],
                                        "index": "last"},
                            "range": {"type": "numbered", "startDate": "2026-01-30", "numberOfOccurrences": 3}},
                           date(2026, 1, 30))
    found = occurrences(rec, datetime(2026, 1, 30, 15), timedelta(hours=1), ZoneInfo("Europe/Amsterdam"), until=FAR)
    assert [o.start.astimezone(ZoneInfo("Europe/Amsterdam")).date() for o in found] == [
        date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]


def test_end_date_is_inclusive_and_yearly_rules_work():
    rec = parse_recurrence({"pattern": {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
                            "range": {"type": "endDate", "startDate": "2028-02-29", "endDate": "2030-02-28"}},
                           date(2028, 2, 29))
    found = occurrences(rec, datetime(2028, 2, 29, 8), timedelta(hours=1), ZoneInfo("UTC"),
                        until=datetime(2031, 1, 1, tzinfo=timezone.utc))
    assert [o.start.date() for o in found] == [date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28)]


@pytest.mark.parametrize("body, field", [
    ({"pattern": {"type": "hourly", "interval": 1}, "range": {"type": "noEnd"}}, "recurrence.pattern.type"),
    ({"pattern": {"type": "weekly", "interval": 1}, "range": {"type": "noEnd"}}, "recurrence.pattern.daysOfWeek"),
    ({"pattern": {"type": "daily", "interval": 0}, "range": {"type": "noEnd"}}, "recurrence.pattern.interval"),
    ({"pattern": {"type": "daily", "interval": 1}, "range": {"type": "endDate"}}, "recurrence.range.endDate"),
    ({"pattern": {"type": "daily", "interval": 1}, "range": {"type": "noEnd", "startDate": "2026-01-02"}},
     "recurrence.range.startDate"),
    ({"pattern": {"type": "daily", "interval": 1, "colour": "red"}, "range": {"type": "noEnd"}},
     "recurrence.pattern.colour"),
    ({"pattern": {"type": "absoluteMonthly", "interval": 1}, "range": {"type": "noEnd"}},
     "recurrence.pattern.dayOfMonth"),
])
def test_bad_recurrences_name_the_field(body, field):
    with pytest.raises(Problem) as refused:
        parse_recurrence(body, date(2026, 1, 1))
    assert refused.value.field == field and refused.value.status in (400, 422)


def test_too_many_or_no_occurrences_are_refused():
    many = parse_recurrence({"pattern": {"type": "daily", "interval": 1},
                             "range": {"type": "endDate", "endDate": "2027-12-31"}}, date(2026, 1, 1))
    with pytest.raises(Problem) as refused:
        check_bounds(many, datetime(2026, 1, 1, 9), 100)
    assert refused.value.field == "recurrence.range"
    # 30 February never happens: a yearly series on it names no occurrence
    none = parse_recurrence({"pattern": {"type": "relativeYearly", "interval": 1, "daysOfWeek": ["monday"],
                                         "index": "first", "month": 2},
                             "range": {"type": "endDate", "endDate": "2026-01-31"}}, date(2026, 1, 1))
    with pytest.raises(Problem) as refused:
        check_bounds(none, datetime(2026, 1, 1, 9), 100)
    assert refused.value.field == "recurrence.pattern"


@settings(max_examples=60, deadline=None)
@given(day=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
       hour=st.integers(min_value=0, max_value=23),
       zone=st.sampled_from(["Europe/Amsterdam", "America/New_York", "Australia/Sydney", "UTC"]),
       interval=st.integers(min_value=1, max_value=3))
def test_weekly_occurrences_share_weekday_and_wall_time(day, hour, zone, interval):
    tz = ZoneInfo(zone)
    rec = parse_recurrence({"pattern": {"type": "weekly", "interval": interval, "daysOfWeek": [DAYS[day.weekday()]]},
                            "range": {"type": "numbered", "numberOfOccurrences": 20}}, day)
    first = datetime.combine(day, datetime.min.time()).replace(hour=hour, minute=30)
    found = occurrences(rec, first, timedelta(minutes=45), tz, until=FAR + timedelta(days=3650))
    assert len(found) == 20
    for n, occurrence in enumerate(found):
        assert occurrence.local_start == first + timedelta(weeks=n * interval)
        # a wall time in a spring-forward gap is shown an hour later; every other one is kept
        shown = occurrence.start.astimezone(tz).replace(tzinfo=None)
        assert shown - occurrence.local_start in (timedelta(0), timedelta(hours=1))
        assert occurrence.end - occurrence.start == timedelta(minutes=45)
