"""Recurring events on the Graph emulator: calendarView and instances expand a series, an edited
occurrence becomes an exception with the same id, a deleted one disappears, each occurrence has
its own iCalUId, and wall-clock times follow the series' zone across DST (GRAPH.md §4.3)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.support.calendar_client import CalendarClient, at, event_body
from tests.support.calendar_fixtures import cal, person  # noqa: F401 - fixtures

AMSTERDAM = "W. Europe Standard Time"


def next_weekday(moment: datetime, weekday: int) -> datetime:
    return moment + timedelta(days=(weekday - moment.weekday()) % 7 or 7)


def weekly_series(cal: CalendarClient, person: str, count: int = 6) -> tuple[dict, datetime]:
    monday = at(next_weekday(cal.now, 0), 9)
    body = event_body("Team sync", monday, 30, recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"], "firstDayOfWeek": "monday"},
        "range": {"type": "numbered", "startDate": monday.date().isoformat(), "numberOfOccurrences": count},
    })
    return cal.created(person, body), monday


def test_series_master_lists_once_and_calendar_view_expands_it(cal, person):
    master, monday = weekly_series(cal, person)
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["daysOfWeek"] == ["monday", "wednesday"]
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 6
    assert [e["type"] for e in cal.list(person)["value"]] == ["seriesMaster"]

    occurrences = cal.view(person, monday - timedelta(days=1), monday + timedelta(days=21))
    assert [o["type"] for o in occurrences] == ["occurrence"] * 6
    assert all(o["seriesMasterId"] == master["id"] for o in occurrences)
    starts = [datetime.fromisoformat(o["start"]["dateTime"][:19]) for o in occurrences]
    assert [s.weekday() for s in starts] == [0, 2] * 3
    assert len({o["iCalUId"] for o in occurrences} | {master["iCalUId"]}) == 7
    assert len({o["id"] for o in occurrences}) == 6
    assert occurrences[0]["originalStart"] == monday.strftime("%Y-%m-%dT%H:%M:%SZ")
    second = cal.fetch(person, occurrences[1]["id"])
    assert second["type"] == "occurrence" and second["start"] == occurrences[1]["start"]


def test_exception_and_cancelled_occurrence_show_in_calendar_view_and_instances(cal, person):
    master, monday = weekly_series(cal, person)
    window = (monday - timedelta(days=1), monday + timedelta(days=21))
    occurrences = cal.view(person, *window)
    moved, dropped = occurrences[1], occurrences[3]

    later = datetime.fromisoformat(moved["start"]["dateTime"][:19]).replace(tzinfo=timezone.utc) + timedelta(hours=3)
    patched = cal.patch(person, moved["id"], {"subject": "Team sync (moved)",
                                              "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                                              "end": {"dateTime": (later + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}})
    assert patched.status_code == 200
    assert patched.json()["type"] == "exception" and patched.json()["id"] == moved["id"]
    assert cal.delete(person, dropped["id"]).status_code == 204
    assert cal.get(person, dropped["id"]).status_code == 404

    view = cal.view(person, *window)
    instances = cal.http.get(cal.item(person, master["id"], "instances"), params={
        "startDateTime": window[0].isoformat(), "endDateTime": window[1].isoformat()}).json()["value"]
    for items in (view, instances):
        assert len(items) == 5
        assert dropped["id"] not in {i["id"] for i in items}
        exception = next(i for i in items if i["id"] == moved["id"])
        assert exception["type"] == "exception" and exception["subject"] == "Team sync (moved)"
        assert exception["start"]["dateTime"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
        assert exception["originalStart"] == moved["originalStart"]
    assert [e["type"] for e in cal.list(person)["value"]] == ["seriesMaster"]
    assert cal.fetch(person, master["id"])["changeKey"] != master["changeKey"]


def test_window_parameters_are_required_and_named(cal, person):
    master, _ = weekly_series(cal, person)
    for url in (cal.url(person, "calendarView"), cal.item(person, master["id"], "instances")):
        response = cal.http.get(url, params={"startDateTime": "2030-01-01T00:00:00Z"})
        assert response.status_code == 400
        assert "endDateTime" in response.json()["error"]["message"]
        response = cal.http.get(url, params={"endDateTime": "2030-01-01T00:00:00Z"})
        assert "startDateTime" in response.json()["error"]["message"]


def test_wall_clock_time_is_kept_across_the_dst_change(cal, person):
    body = {"subject": "Morning check-in",
            "start": {"dateTime": "2027-03-22T09:00:00", "timeZone": AMSTERDAM},
            "end": {"dateTime": "2027-03-22T09:15:00", "timeZone": AMSTERDAM},
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                           "range": {"type": "numbered", "startDate": "2027-03-22", "numberOfOccurrences": 3}}}
    cal.created(person, body)
    window = (datetime(2027, 3, 21, tzinfo=timezone.utc), datetime(2027, 4, 10, tzinfo=timezone.utc))
    utc = cal.view(person, *window)
    assert [o["start"]["dateTime"][11:16] for o in utc] == ["08:00", "07:00", "07:00"]  # CEST from 28 March
    local = cal.http.get(cal.url(person, "calendarView"), headers={"Prefer": f'outlook.timezone="{AMSTERDAM}"'},
                            params={"startDateTime": window[0].isoformat(), "endDateTime": window[1].isoformat()}).json()
    assert [o["start"]["dateTime"][11:16] for o in local["value"]] == ["09:00"] * 3


def test_moving_the_series_moves_every_occurrence(cal, person):
    master, monday = weekly_series(cal, person, count=4)
    window = (monday - timedelta(days=1), monday + timedelta(days=14))
    later = monday + timedelta(hours=2)
    cal.patch(person, master["id"], {"start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                                     "end": {"dateTime": (later + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                                             "timeZone": "UTC"}})
    assert {o["start"]["dateTime"][11:16] for o in cal.view(person, *window)} == {later.strftime("%H:%M")}


def test_recurrence_on_an_occurrence_and_broken_patterns_are_refused(cal, person):
    master, monday = weekly_series(cal, person, count=2)
    occurrence = cal.view(person, monday - timedelta(days=1), monday + timedelta(days=7))[0]
    response = cal.patch(person, occurrence["id"], {"recurrence": master["recurrence"]})
    assert response.status_code == 400
    broken = event_body("Broken", at(cal.day(1), 9), recurrence={"pattern": {"type": "weekly", "interval": 1},
                                                                  "range": {"type": "noEnd", "startDate": "2030-01-01"}})
    response = cal.create(person, broken)
    assert response.status_code == 400 and "daysOfWeek" in response.json()["error"]["message"]
