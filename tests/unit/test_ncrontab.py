"""NCRONTAB schedules (sync.ncrontab, the one parser of settings and the local host): parsing,
examples worked out by hand, and properties checked against a plain second-by-second /
day-by-day search that shares no code with the module's own search."""
from __future__ import annotations

import base64
import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.localhost import LocalHost, LocalHostError
from devtools.localhost import ncrontab as local_host_ncrontab
from devtools.localhost.ncrontab import resolve_settings
from sync import ncrontab
from sync.ncrontab import ScheduleError, next_after, parse
from sync.settings import SettingsError, check_ncrontab, load_settings

UTC = timezone.utc


# --- worked examples -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "expression, after, expected",
    [
        ("* * * * * *", datetime(2024, 5, 1, 10, 0, 0), datetime(2024, 5, 1, 10, 0, 1)),
        ("* * * * * *", datetime(2024, 5, 1, 10, 0, 0, 500_000), datetime(2024, 5, 1, 10, 0, 1)),
        ("0 */5 * * * *", datetime(2024, 5, 1, 10, 3, 7), datetime(2024, 5, 1, 10, 5, 0)),
        ("0 */5 * * * *", datetime(2024, 5, 1, 10, 55, 0), datetime(2024, 5, 1, 11, 0, 0)),
        ("30 15 2 * * *", datetime(2024, 12, 31, 3, 0, 0), datetime(2025, 1, 1, 2, 15, 30)),
        # Weekdays at 09:30: Friday evening -> Monday morning (2024-05-03 is a Friday).
        ("0 30 9 * * 1-5", datetime(2024, 5, 3, 18, 0, 0), datetime(2024, 5, 6, 9, 30, 0)),
        ("0 0 12 * * MON,wed", datetime(2024, 5, 6, 12, 0, 0), datetime(2024, 5, 8, 12, 0, 0)),
        ("0 0 12 * * Sunday", datetime(2024, 5, 6, 0, 0, 0), datetime(2024, 5, 12, 12, 0, 0)),
        ("0 0 0 1 jan-mar/2 *", datetime(2024, 1, 1, 0, 0, 0), datetime(2024, 3, 1, 0, 0, 0)),
        # Leap day only exists every four years.
        ("0 0 0 29 2 *", datetime(2024, 3, 1), datetime(2028, 2, 29)),
        # Day 31 skips the months that do not have one.
        ("0 0 0 31 * *", datetime(2024, 4, 1), datetime(2024, 5, 31)),
        # Day of month AND day of week: the next Friday the 13th after 2024-01-01 is in September.
        ("0 0 0 13 * 5", datetime(2024, 1, 1), datetime(2024, 9, 13)),
        # `a/n` steps from a to the end of the field.
        ("10/20 * * * * *", datetime(2024, 5, 1, 10, 0, 50), datetime(2024, 5, 1, 10, 1, 10)),
        # Five fields: minute-level, seconds fixed at 0.
        ("*/15 * * * *", datetime(2024, 5, 1, 10, 7, 30), datetime(2024, 5, 1, 10, 15, 0)),
        ("0 0 * * 0", datetime(2024, 5, 4, 23, 0, 0), datetime(2024, 5, 5, 0, 0, 0)),
    ],
)
def test_next_occurrence_of_worked_examples(expression, after, expected):
    assert next_after(expression, after) == expected


def test_aware_times_come_back_as_utc():
    eastern = timezone(timedelta(hours=-5))
    result = next_after("0 0 * * * *", datetime(2024, 5, 1, 10, 30, tzinfo=eastern))
    assert result == datetime(2024, 5, 1, 16, 0, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)


def test_lists_and_ranges_expand_to_the_expected_values():
    schedule = parse("0,30 1-3,10 */6 1,15 * 0,SAT")
    assert schedule.seconds == (0, 30)
    assert schedule.minutes == (1, 2, 3, 10)
    assert schedule.hours == (0, 6, 12, 18)
    assert schedule.days == (1, 15)
    assert schedule.months == tuple(range(1, 13))
    assert schedule.weekdays == (0, 6)


@pytest.mark.parametrize(
    "expression, words",
    [
        ("* * * * *  * *", "7 fields, not six"),
        ("* * * *", "4 fields, not six"),
        ("60 * * * * *", "second field"),
        ("* * 24 * * *", "hour field"),
        ("* * * 0 * *", "day-of-month field"),
        ("* * * * 13 *", "month field"),
        ("* * * * * 7", "day-of-week field"),
        ("*/0 * * * * *", "step"),
        ("* 30-10 * * * *", "backwards"),
        ("* * * * Foo *", "unknown name"),
        ("* * * 1-x * *", "not a number"),
        ("0 0 0 30 2 *", "no day"),
        ("0 0 0 31 2 *", "no day that exists in its months, so it would never fire"),
        ("0 0 0 31 4,6,9,11 *", "no day"),
        ("0 0 0 30,31 feb *", "no day"),
    ],
)
def test_invalid_expressions_are_refused_with_a_clear_message(expression, words):
    with pytest.raises(ScheduleError) as caught:
        parse(expression)
    message = str(caught.value)
    assert words in message
    assert expression in message
    assert "\n" not in message


# --- one parser: settings and the local host agree ---------------------------------------------

NEVER_FIRES = ["0 0 0 31 2 *", "0 0 0 30 feb *", "0 0 12 31 4,6,9,11 *", "0 0 0 31 2 1-5"]


def test_the_local_host_fires_timers_with_the_parser_settings_check_with():
    assert local_host_ncrontab.parse is ncrontab.parse
    assert local_host_ncrontab.Schedule is ncrontab.Schedule


@pytest.mark.parametrize("expression", NEVER_FIRES)
def test_a_schedule_naming_no_existing_day_is_refused_by_settings_and_the_local_host_alike(expression):
    from tests.e2e.sample_app import function_app as sample  # a small app with one timer

    with pytest.raises(SettingsError) as by_settings:
        load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                       "PUBLIC_BASE_URL": "https://sync.example.com",
                       "SECRET_ENCRYPTION_KEY": base64.b64encode(bytes(range(32))).decode(),
                       "USER_SYNC_SCHEDULE": expression})
    # Start-up stops at the schedule, before any port is opened or storage is reached.
    local_settings = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SAMPLE_OUTPUT_QUEUE": "q-out",
                      "SAMPLE_WORK_QUEUE": "q-w", "SAMPLE_SEEN_QUEUE": "q-s", "SAMPLE_FAILING_QUEUE": "q-f",
                      "SAMPLE_TICK_SCHEDULE": expression}
    with pytest.raises(LocalHostError) as by_host:
        LocalHost(sample.app, 0, settings=local_settings).start()
    assert by_settings.value.setting == "USER_SYNC_SCHEDULE"
    for message in (str(by_settings.value), str(by_host.value)):
        assert "\n" not in message
        assert f"schedule '{expression}' names no day that exists in its months" in message


@pytest.mark.parametrize("expression", ["0 0 0 29 2 *", "0 0 0 31 1-2 *", "0 0 0 30,31 2,4 *"])
def test_a_schedule_with_one_existing_day_is_accepted_by_both(expression):
    assert parse(expression).next_after(datetime(2024, 1, 1)) > datetime(2024, 1, 1)
    assert check_ncrontab(expression) == expression


def test_settings_are_resolved_and_a_missing_one_is_named():
    assert resolve_settings("%NIGHTLY%", {"NIGHTLY": " 0 0 2 * * * "}) == "0 0 2 * * *"
    assert resolve_settings("0 %M% * * * *", {"M": "*/10"}) == "0 */10 * * * *"
    with pytest.raises(ScheduleError, match="NIGHTLY"):
        resolve_settings("%NIGHTLY%", {})


# --- properties against an independent search ------------------------------------------------

def _field(kind, allow_names: bool):
    """Random valid text for one field, built from the same grammar users write."""
    low, high = kind.low, kind.high
    number = st.integers(low, high)
    pieces = [
        st.just("*"),
        number.map(str),
        st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.integers(1, high - low + 1).map(lambda n: f"*/{n}"),
        st.tuples(number, st.integers(1, 12)).map(lambda a_n: f"{a_n[0]}/{a_n[1]}"),
    ]
    if allow_names and kind.names:
        pieces.append(number.map(lambda v: kind.names[v - low][:3].upper()))
    return st.lists(st.one_of(pieces), min_size=1, max_size=3).map(",".join)


def _schedules(dense: bool):
    """Expressions that parse; `dense` ones fire at least hourly so a brute-force scan stays short."""
    kinds = ncrontab.SIX_FIELDS
    fields = [_field(kind, allow_names=True) for kind in kinds]
    if dense:
        fields[2] = st.just("*")
        fields[3] = st.just("*")
        fields[4] = st.just("*")
        fields[5] = st.just("*")
    return st.tuples(*fields).map(" ".join).filter(_parses)


def _parses(expression: str) -> bool:
    try:
        parse(expression)
    except ScheduleError:
        return False
    return True


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31))


def _reference_next(schedule: ncrontab.Schedule, after: datetime) -> datetime:
    """Walk day by day; inside a day, walk hour, minute, second in order. No bisect, no jumps."""
    floor = after.replace(microsecond=0)
    day = floor.date()
    while True:
        if schedule.matches_day(day):
            for hour, minute, second in itertools.product(schedule.hours, schedule.minutes, schedule.seconds):
                candidate = datetime(day.year, day.month, day.day, hour, minute, second)
                if candidate > after:
                    return candidate
        day += timedelta(days=1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(expression=_schedules(dense=False), after=moments)
def test_next_is_later_matches_and_equals_an_independent_search(expression, after):
    schedule = parse(expression)
    found = schedule.next_after(after)
    assert found > after
    assert schedule.matches(found)
    assert found == _reference_next(schedule, after)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(expression=_schedules(dense=True), after=moments)
def test_no_occurrence_lies_strictly_between(expression, after):
    schedule = parse(expression)
    found = schedule.next_after(after)
    assert found - after <= timedelta(hours=1)  # dense schedules fire every hour
    probe = after.replace(microsecond=0) + timedelta(seconds=1)
    while probe < found:
        assert not schedule.matches(probe), f"{probe} matches but {found} was returned"
        probe += timedelta(seconds=1)


@settings(max_examples=100, deadline=None)
@given(after=moments)
def test_consecutive_occurrences_of_every_second_are_one_second_apart(after):
    first = next_after("* * * * * *", after)
    assert next_after("* * * * * *", first) - first == timedelta(seconds=1)


def test_weekday_numbers_follow_sunday_zero():
    sunday = date(2024, 5, 5)
    schedule = parse("0 0 0 * * 0")
    assert schedule.matches_day(sunday)
    assert not schedule.matches_day(sunday + timedelta(days=1))
