"""calendarView delta on the Graph emulator (GRAPH.md §4.4): pages sized by
`Prefer: odata.maxpagesize`, a deltaLink that replays changes since, `@removed` for deletions,
for events that left the window and for changes outside it, no series masters, no `$select`,
and 410 SyncStateNotFound once the mailbox's tokens are gone."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.calendar_client import CalendarClient, at, event_body, graph_time
from tests.support.calendar_fixtures import cal, person  # noqa: F401 - fixtures


def start_round(cal: CalendarClient, person: str, start, end, page_size: int | None = None):
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    response = cal.http.get(cal.url(person, "calendarView", "delta"), headers=headers,
                               params={"startDateTime": start.isoformat(), "endDateTime": end.isoformat()})
    return follow(cal, response, headers)


def follow(cal: CalendarClient, response, headers=None):
    """All pages of one round: (items, page sizes, deltaLink, first response)."""
    first = response
    items, sizes = [], []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert not ("@odata.nextLink" in page and "@odata.deltaLink" in page)
        items += page["value"]
        sizes.append(len(page["value"]))
        if "@odata.deltaLink" in page:
            return items, sizes, page["@odata.deltaLink"], first
        response = cal.http.get(page["@odata.nextLink"], headers=headers or {})


def replay(cal: CalendarClient, delta_link: str):
    return follow(cal, cal.http.get(delta_link))


@pytest.fixture
def window(cal):
    return at(cal.day(1), 0), at(cal.day(8), 0)


def test_initial_round_pages_by_maxpagesize_and_skips_series_masters(cal, person, window):
    start, end = window
    singles = {cal.created(person, event_body(f"Single {n}", start + timedelta(hours=9 + n)))["id"] for n in range(5)}
    cal.created(person, event_body("Outside", end + timedelta(days=3)))
    master = cal.created(person, event_body("Daily", start + timedelta(days=2, hours=7), recurrence={
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": (start + timedelta(days=2)).date().isoformat(), "numberOfOccurrences": 2}}))

    items, sizes, delta_link, first = start_round(cal, person, start, end, page_size=2)
    assert sizes == [2, 2, 2, 1]
    assert "odata.maxpagesize=2" in first.headers["Preference-Applied"]
    assert "odata.track-changes" in first.headers["Preference-Applied"]
    assert "$deltatoken=" in delta_link
    assert {i["type"] for i in items} == {"singleInstance", "occurrence"}
    assert {i["id"] for i in items if i["type"] == "singleInstance"} == singles
    assert [i["seriesMasterId"] for i in items if i["type"] == "occurrence"] == [master["id"]] * 2
    assert "Outside" not in {i["subject"] for i in items}


def test_replay_reports_changes_deletions_and_departures(cal, person, window):
    start, end = window
    keep = cal.created(person, event_body("Keep", start + timedelta(hours=9)))
    change = cal.created(person, event_body("Change", start + timedelta(hours=10)))
    drop = cal.created(person, event_body("Drop", start + timedelta(hours=11)))
    leave = cal.created(person, event_body("Leave", start + timedelta(hours=12)))
    _, _, delta_link, _ = start_round(cal, person, start, end)

    items, _, quiet_link, _ = replay(cal, delta_link)
    assert items == []

    cal.patch(person, change["id"], {"subject": "Changed"})
    cal.delete(person, drop["id"])
    far = end + timedelta(days=10)
    cal.patch(person, leave["id"], {"start": graph_time(far), "end": graph_time(far + timedelta(hours=1))})
    added = cal.created(person, event_body("Added", start + timedelta(days=1, hours=9)))
    outside = cal.created(person, event_body("Outside", end + timedelta(days=20)))

    items, _, next_link, _ = replay(cal, quiet_link)
    by_id = {i["id"]: i for i in items}
    assert by_id[change["id"]]["subject"] == "Changed"
    assert by_id[added["id"]]["subject"] == "Added"
    for gone in (drop["id"], leave["id"], outside["id"]):
        assert by_id[gone] == {"@odata.type": "#microsoft.graph.event", "id": gone, "@removed": {"reason": "deleted"}}
    assert keep["id"] not in by_id
    assert replay(cal, next_link)[0] == []
    assert {i["id"] for i in replay(cal, quiet_link)[0]} == set(by_id)  # a deltaLink can be replayed


def test_select_is_refused_and_the_window_is_required(cal, person, window):
    start, end = window
    refused = cal.http.get(cal.url(person, "calendarView", "delta"), params={
        "startDateTime": start.isoformat(), "endDateTime": end.isoformat(), "$select": "subject"})
    assert refused.status_code == 400 and "$select" in refused.json()["error"]["message"]
    missing = cal.http.get(cal.url(person, "calendarView", "delta"), params={"startDateTime": start.isoformat()})
    assert missing.status_code == 400 and "endDateTime" in missing.json()["error"]["message"]


def test_expired_and_unknown_tokens_answer_410(cal, person, window):
    start, end = window
    cal.created(person, event_body("Something", start + timedelta(hours=9)))
    _, _, delta_link, _ = start_round(cal, person, start, end)
    expired = cal.control_call("POST", person, "calendar", "delta-tokens", "expire")
    assert expired.status_code == 200 and expired.json()["expired"] >= 1
    gone = cal.http.get(delta_link)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "SyncStateNotFound"
    unknown = cal.http.get(cal.url(person, "calendarView", "delta"), params={"$deltatoken": "bm90LWEtdG9rZW4"})
    assert unknown.status_code == 410

    items, _, _, _ = start_round(cal, person, start, end)  # a full resync works again
    assert [i["subject"] for i in items] == ["Something"]


def test_delta_follows_the_calendar_path_form_and_prefer_timezone(cal, person, window):
    start, end = window
    cal.created(person, event_body("Zoned", start + timedelta(hours=9)))
    response = cal.http.get(cal.url(person, "calendar", "calendarView", "delta"),
                               headers={"Prefer": 'outlook.timezone="Tokyo Standard Time"'},
                               params={"startDateTime": start.isoformat(), "endDateTime": end.isoformat()})
    items, _, delta_link, _ = follow(cal, response)
    assert "/calendar/calendarView/delta?" in delta_link
    assert items[0]["start"]["timeZone"] == "Tokyo Standard Time"
    assert items[0]["start"]["dateTime"][11:13] == "18"
