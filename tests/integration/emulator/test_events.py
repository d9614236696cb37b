"""Event CRUD on the Graph emulator as Graph documents it (GRAPH.md §4.1-4.5): both path forms,
Outlook-shaped ids, paging by 10, `$select`, `Prefer` headers, transactionId de-duplication,
single-value extended properties, `$filter`, permissions and error codes."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from devtools.graph_emulator import seed, users
from tests.support.calendar_client import CalendarClient, at, event_body, q
from tests.support.calendar_fixtures import person  # noqa: F401 - fixture

GRAPH_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}$")
GRAPH_UTC_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
PROP = "String {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Name ReservationId"


@pytest.fixture
def cal(make_tenant) -> CalendarClient:
    return CalendarClient(make_tenant(users=3, rooms=1))


def test_create_answers_201_with_the_graph_representation(cal, person):
    start = at(cal.day(2), 9, 30)
    response = cal.create(person, event_body("Design review", start, 45, body={"contentType": "html",
                                                                              "content": "<p>Bring <b>mock-ups</b></p>"}))
    assert response.status_code == 201
    event = response.json()
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["type"] == "singleInstance" and event["seriesMasterId"] is None
    assert event["subject"] == "Design review" and event["bodyPreview"] == "Bring mock-ups"
    assert event["start"] == {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}
    assert GRAPH_LOCAL_TIME.match(event["end"]["dateTime"])
    assert GRAPH_UTC_STAMP.match(event["createdDateTime"]) and GRAPH_UTC_STAMP.match(event["lastModifiedDateTime"])
    assert event["organizer"]["emailAddress"]["address"] == person
    assert event["isOrganizer"] is True and event["responseStatus"]["response"] == "organizer"
    assert event["iCalUId"].startswith("040000008200E00074C5B7101A82E008")
    assert "transactionId" not in event
    assert event["id"].endswith("=")  # Outlook ids are base64 text


def test_crud_through_both_path_forms(cal, person):
    created = cal.created(person, event_body("Standup", at(cal.day(1), 8)))
    by_calendar = cal.http.get(cal.url(person, "calendar", "events", q(created["id"])))
    assert by_calendar.status_code == 200 and by_calendar.json()["id"] == created["id"]

    patched = cal.http.patch(cal.url(person, "calendar", "events", q(created["id"])), json={"subject": "Daily standup"})
    assert patched.status_code == 200
    assert patched.json()["subject"] == "Daily standup"
    assert patched.json()["changeKey"] != created["changeKey"]
    assert patched.json()["lastModifiedDateTime"] >= created["lastModifiedDateTime"]
    assert cal.fetch(person, created["id"])["subject"] == "Daily standup"

    assert cal.delete(person, created["id"]).status_code == 204
    for url in (cal.item(person, created["id"]), cal.url(person, "calendar", "events", q(created["id"]))):
        gone = cal.http.get(url)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert cal.delete(person, created["id"]).status_code == 404


def test_ids_with_slash_and_plus_work_when_percent_encoded(cal, person):
    for n in range(40):
        event = cal.created(person, event_body(f"Id probe {n}", at(cal.day(1), 7)))
        if "/" in event["id"] and "+" in event["id"]:
            break
    else:
        pytest.fail("no id with both '/' and '+' in 40 tries")
    assert cal.fetch(person, event["id"])["subject"] == event["subject"]


def test_list_pages_by_ten_with_next_links(cal, person):
    made = {cal.created(person, event_body(f"Slot {n}", at(cal.day(3), 8) + timedelta(minutes=15 * n)))["id"]
            for n in range(23)}
    page = cal.list(person)
    sizes, seen = [], []
    while True:
        sizes.append(len(page["value"]))
        seen += [e["id"] for e in page["value"]]
        if "@odata.nextLink" not in page:
            break
        assert "$skip=" in page["@odata.nextLink"]
        page = cal.http.get(page["@odata.nextLink"]).json()
    assert sizes == [10, 10, 3]
    assert len(seen) == len(set(seen)) and set(seen) == made
    assert len(cal.list(person, **{"$top": "5"})["value"]) == 5


def test_select_keeps_id_and_etag_and_refuses_unknown_names(cal, person):
    cal.created(person, event_body("Selected", at(cal.day(1), 10)))
    item = cal.list(person, **{"$select": "subject,start"})["value"][0]
    assert set(item) == {"@odata.etag", "id", "subject", "start"}
    bad = cal.http.get(cal.url(person, "events"), params={"$select": "subject,colour"})
    assert bad.status_code == 400 and "colour" in bad.json()["error"]["message"]


def test_prefer_outlook_timezone_changes_only_the_response_zone(cal, person):
    body = event_body("Zones", at(cal.day(4), 0))
    body["start"] = {"dateTime": cal.day(4).strftime("%Y-%m-%dT10:00:00"), "timeZone": "W. Europe Standard Time"}
    body["end"] = {"dateTime": cal.day(4).strftime("%Y-%m-%dT11:00:00"), "timeZone": "W. Europe Standard Time"}
    event = cal.created(person, body)
    utc_start = event["start"]
    assert utc_start["timeZone"] == "UTC" and event["originalStartTimeZone"] == "W. Europe Standard Time"

    for zone, expected_hour in (("W. Europe Standard Time", "10"), ("Europe/Berlin", "10")):
        response = cal.http.get(cal.item(person, event["id"]), headers={"Prefer": f'outlook.timezone="{zone}"'})
        assert response.headers["Preference-Applied"] == f'outlook.timezone="{zone}"'
        assert response.json()["start"]["timeZone"] == zone
        assert response.json()["start"]["dateTime"][11:13] == expected_hour
    tokyo = cal.http.get(cal.item(person, event["id"]), headers={"Prefer": 'outlook.timezone="Asia/Tokyo"'}).json()
    assert tokyo["start"]["dateTime"] != utc_start["dateTime"]
    assert cal.fetch(person, event["id"])["start"] == utc_start  # nothing stored changed


def test_prefer_immutable_id_and_body_type_are_echoed(cal, person):
    event = cal.created(person, event_body("Ids", at(cal.day(1), 11), body={"contentType": "html", "content": "<p>Hi <i>there</i></p>"}))
    response = cal.http.get(cal.item(person, event["id"]), headers={
        "Prefer": 'IdType="ImmutableId", outlook.body-content-type="text"'})
    assert 'IdType="ImmutableId"' in response.headers["Preference-Applied"]
    assert response.json()["body"] == {"contentType": "text", "content": "Hi there"}
    assert response.json()["id"] == event["id"]


def test_transaction_id_makes_a_repeated_create_return_the_same_event(cal, person):
    body = event_body("Booked once", at(cal.day(2), 13), transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")
    first, second = cal.created(person, body), cal.created(person, body)
    assert first["id"] == second["id"] and first["transactionId"] == body["transactionId"]
    assert [e["id"] for e in cal.list(person)["value"]] == [first["id"]]
    changed = cal.patch(person, first["id"], {"transactionId": "something-else"})
    assert changed.status_code == 400


def test_extended_property_is_only_readable_through_expand_and_filterable(cal, person):
    tagged = cal.created(person, event_body("Tagged", at(cal.day(2), 9),
                                            singleValueExtendedProperties=[{"id": PROP, "value": "res-42"}]))
    cal.created(person, event_body("Untagged", at(cal.day(2), 11)))
    assert "singleValueExtendedProperties" not in cal.fetch(person, tagged["id"])

    expand = f"singleValueExtendedProperties($filter=id eq '{PROP}')"
    expanded = cal.get(person, tagged["id"], **{"$expand": expand}).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": PROP, "value": "res-42"}]

    def found(prop_id: str, value: str) -> list[str]:
        flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop_id}' and ep/value eq '{value}')"
        return [e["subject"] for e in cal.list(person, **{"$filter": flt})["value"]]

    assert found(PROP, "res-42") == ["Tagged"]
    assert found(PROP, "RES-42") == ["Tagged"]  # values compare case-insensitively
    assert found(PROP.replace("8ECCC264", "8eccc264").replace("String", "string"), "res-42") == ["Tagged"]
    assert found(PROP.replace("ReservationId", "reservationid"), "res-42") == []  # the Name part is case-sensitive
    assert found(PROP, "res-43") == []

    cal.patch(person, tagged["id"], {"singleValueExtendedProperties": [{"id": PROP, "value": "res-43"}]})
    assert found(PROP, "res-43") == ["Tagged"]


def test_filter_by_ical_uid_and_type(cal, person):
    one = cal.created(person, event_body("One", at(cal.day(1), 9)))
    cal.created(person, event_body("Two", at(cal.day(1), 10)))
    hits = cal.list(person, **{"$filter": f"iCalUId eq '{one['iCalUId']}'"})["value"]
    assert [e["id"] for e in hits] == [one["id"]]
    assert len(cal.list(person, **{"$filter": "type eq 'singleInstance'"})["value"]) == 2
    assert cal.list(person, **{"$filter": "type eq 'seriesMaster'"})["value"] == []
    early = one["start"]["dateTime"][:19] + "Z"
    later = cal.list(person, **{"$filter": f"start/dateTime gt '{early}' and contains(subject, 'tw')"})["value"]
    assert [e["subject"] for e in later] == ["Two"]
    broken = cal.http.get(cal.url(person, "events"), params={"$filter": "subject eq"})
    assert broken.status_code == 400


@pytest.mark.parametrize("body, status, code", [
    ({"subject": "x", "colour": "red"}, 400, "RequestBodyRead"),
    ({"subject": "no times"}, 400, "ErrorInvalidRequest"),
    ({"subject": "zone", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "Mars/Olympus"},
      "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}}, 400, "TimeZoneNotSupportedException"),
    ({"subject": "backwards", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
      "end": {"dateTime": "2030-01-01T09:00:00", "timeZone": "UTC"}}, 400, "ErrorInvalidRequest"),
    ({"subject": "all day", "isAllDay": True, "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
      "end": {"dateTime": "2030-01-02T10:00:00", "timeZone": "UTC"}}, 400, "ErrorInvalidRequest"),
    ({"subject": "x", "showAs": "sleeping", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
      "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}}, 400, "RequestBodyRead"),
])
def test_invalid_bodies_are_refused(cal, person, body, status, code):
    response = cal.create(person, body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_a_refused_update_changes_nothing(cal, person):
    event = cal.created(person, event_body("Before", at(cal.day(3), 9)))
    refused = cal.patch(person, event["id"], {"subject": "After", "isAllDay": True})
    assert refused.status_code == 400
    after = cal.fetch(person, event["id"])
    assert (after["subject"], after["isAllDay"], after["changeKey"]) == ("Before", False, event["changeKey"])


def test_unknown_users_mailboxless_users_and_unknown_ids(cal, person):
    unknown = cal.http.get(cal.url("nobody@" + cal.tenant.domain, "events"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ErrorInvalidUser"
    no_mailbox = seed.add_user(cal.tenant.world, cal.tenant.tenant, alias="nomail", mail=None)
    response = cal.http.get(cal.url(no_mailbox.id, "events"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    leaver = cal.tenant.users[2]
    users.soft_delete_user(cal.tenant.world, cal.tenant.tenant, leaver.id)
    response = cal.http.get(cal.url(leaver.mail, "events"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    missing = cal.get(person, "AAMkAGnotAnEventId=")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_mailboxes_are_addressed_by_id_upn_and_mail(cal):
    user = cal.tenant.users[1]
    event = cal.created(user.id, event_body("Mine", at(cal.day(1), 15)))
    for key in (user.id, user.user_principal_name.upper(), user.mail):
        assert cal.fetch(key, event["id"])["id"] == event["id"]


def test_permissions_and_tokens(make_tenant):
    reader = CalendarClient(make_tenant(users=1, roles={"Calendars.Read"}))
    user = reader.tenant.users[0].mail
    assert reader.http.get(reader.url(user, "events")).status_code == 200
    denied = reader.create(user, event_body("Nope", at(reader.day(1), 9)))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"

    directory_only = CalendarClient(make_tenant(users=1, roles={"User.Read.All"}))
    blocked = directory_only.http.get(directory_only.url(directory_only.tenant.users[0].mail, "events"))
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "ErrorAccessDenied"

    anonymous = reader.http.get(reader.url(user, "events"), headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_all_day_event_in_a_zone(cal, person):
    day = cal.day(5).strftime("%Y-%m-%d")
    next_day = (cal.day(6)).strftime("%Y-%m-%d")
    event = cal.created(person, {"subject": "Offsite", "isAllDay": True,
                                 "start": {"dateTime": f"{day}T00:00:00", "timeZone": "Pacific Standard Time"},
                                 "end": {"dateTime": f"{next_day}T00:00:00", "timeZone": "Pacific Standard Time"}})
    assert event["isAllDay"] is True
    local = cal.http.get(cal.item(person, event["id"]),
                            headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'}).json()
    assert local["start"]["dateTime"] == f"{day}T00:00:00.0000000"
    assert event["start"]["dateTime"][11:13] in ("07", "08")  # midnight Pacific in UTC


def test_concurrent_retries_with_one_transaction_id_create_one_event(cal, person):
    body = event_body("Raced", at(cal.day(2), 17), transactionId="race-1")
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: cal.create(person, body), range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(cal.list(person)["value"]) == 1
