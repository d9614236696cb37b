"""The emulator's second fidelity round: behaviour Microsoft's Graph pages print and the emulator
was kinder about. Each test names the page it follows.

If-Match on event writes, notification `resource` forms and item ids, rooms in Outlook's
documented location shapes, fractional Retry-After, Graph's transport (Location on 201, the
OData content type and OData-Version, kept-alive connections), $batch items carrying the batch's
request ids, no beta `uid` on v1.0 events, typed calendarView delta items, place aliases, room
lists, `$count` and teamsEnabledState, and `$orderby` / `$search` on users.

Everything runs on an emulator owned by this module (faults and notification settings change
on it); nothing sleeps to wait for an outcome.
"""
from __future__ import annotations

import http.client
import socket
import ssl
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests

from devtools.graph_emulator.app import ODATA_JSON
from tests.support.calendar_client import CalendarClient, at, event_body, q
from tests.support.emulator_fixture import new_tenant
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures
    SubscriptionClient, control, notification_emulator, paths, receiver,
)


@pytest.fixture
def server(notification_emulator):
    return notification_emulator


@pytest.fixture
def org(server, control):
    """A fresh tenant with three people and two rooms; notification settings reset."""
    return new_tenant(server, users=3, rooms=2)


@pytest.fixture
def cal(org) -> CalendarClient:
    return CalendarClient(org)


@pytest.fixture
def faults(server):
    """Adds fault rules on this module's emulator and removes them afterwards."""
    added = []

    def add(**rule):
        response = requests.post(f"{server.base_url}/_control/faults", json=rule, verify=server.ca_path, timeout=30)
        assert response.status_code == 201, response.text
        added.append(response.json()["id"])
        return response.json()
    yield add
    for rule_id in added:
        requests.delete(f"{server.base_url}/_control/faults/{rule_id}", verify=server.ca_path, timeout=30)


def control_post(server, path: str, body: dict) -> requests.Response:
    return requests.post(f"{server.base_url}/_control{path}", json=body, verify=server.ca_path, timeout=30)


# ---- If-Match on event writes ---------------------------------------------------------------------------

def test_a_stale_if_match_on_patch_or_delete_is_412_and_changes_nothing(cal, org):
    """https://learn.microsoft.com/en-us/graph/api/event-update and
    https://learn.microsoft.com/en-us/graph/errors (412 Precondition Failed): Outlook refuses a
    write whose If-Match names an older changeKey with ErrorIrresolvableConflict."""
    person = org.users[0].mail
    made = cal.created(person, event_body("Planning", at(cal.day(2), 9)))
    moved = cal.patch(person, made["id"], {"subject": "Planning (moved)"}, headers={"If-Match": made["@odata.etag"]})
    assert moved.status_code == 200 and moved.json()["changeKey"] != made["changeKey"]

    stale_patch = cal.patch(person, made["id"], {"subject": "Lost update"}, headers={"If-Match": made["@odata.etag"]})
    stale_delete = cal.http.delete(cal.item(person, made["id"]), headers={"If-Match": made["@odata.etag"]})

    for refused in (stale_patch, stale_delete):
        assert refused.status_code == 412
        assert refused.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert cal.fetch(person, made["id"])["subject"] == "Planning (moved)"
    assert cal.http.delete(cal.item(person, made["id"]), headers={"If-Match": "*"}).status_code == 204
    assert cal.get(person, made["id"]).status_code == 404


def test_if_match_on_an_occurrence_is_checked_against_that_occurrence(cal, org):
    """https://learn.microsoft.com/en-us/graph/api/event-update: an occurrence is updated by its
    own id; its etag is what a conditional write must name."""
    person = org.users[0].mail
    start = at(cal.day(1), 8)
    cal.created(person, event_body("Daily", start, recurrence={
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 3}}))
    [first, *_] = cal.view(person, start - timedelta(hours=1), start + timedelta(days=3))
    assert cal.patch(person, first["id"], {"subject": "Moved"}, headers={"If-Match": 'W/"older"'}).status_code == 412
    assert cal.patch(person, first["id"], {"subject": "Moved"}, headers={"If-Match": first["@odata.etag"]}).status_code == 200


# ---- change notifications -------------------------------------------------------------------------------

@pytest.mark.parametrize("form, resource, odata_id", [
    ("path", "Users/{user}/Events/{event}", "Users/{user}/Events/{event}"),
    ("tenant", "users/{user}@{tenant}/events/{event}", "Users/{user}@{tenant}/Events/{event}"),
    ("key", "Users('{user}')/Events('{event}')", "Users('{user}')/Events('{event}')"),
])
def test_notifications_use_each_documented_resource_form_and_carry_an_id(org, control, receiver, paths, form,
                                                                         resource, odata_id):
    """https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks (sample:
    `"id"`, `resource` `users/{id}@{tenant}/...`, `@odata.id` `Users/{id}@{tenant}/...`) and
    https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data
    (`Users('{id}')/messages('{id}')`); changeNotification `id`:
    https://learn.microsoft.com/en-us/graph/api/resources/changenotification."""
    control.settings(resource_form=form)
    room = org.rooms[0]
    sub = SubscriptionClient(org).subscribe(f"users/{room.email}/events", receiver.url(paths["notify"]))
    control.publish(org.tenant_id, room.email, "created,updated", item_id="AAMkAD/x+y=")
    control.flush(org.tenant_id)

    items = receiver.wait_for(lambda: receiver.items(paths["notify"]) or None)
    values = {"user": room.user_id, "tenant": org.tenant_id, "event": "AAMkAD/x+y="}
    for item in items:
        assert item["subscriptionId"] == sub["id"]
        assert item["resource"] == resource.format(**values)
        assert item["resourceData"]["@odata.id"] == odata_id.format(**values)
        assert item["resourceData"]["id"] == "AAMkAD/x+y="
    assert all(item["id"] for item in items) and len({item["id"] for item in items}) == len(items)
    [view] = [s for s in control.subscriptions(org.tenant_id) if s["id"] == sub["id"]]
    assert view["resourceForm"] == form


def test_random_resource_forms_are_fixed_per_subscription_and_repeat_with_the_seed(org, control, receiver, paths):
    """https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks: clients
    must accept every spelling of `resource`; which one a subscription gets is random but
    seedable, so a failing run can be repeated."""
    def forms_for_new_subscriptions(count: int) -> list[str]:
        client = SubscriptionClient(org)
        made = [client.subscribe(f"users/{user.mail}/events", receiver.url(paths["notify"]), change_type=kind)["id"]
                for user in org.users for kind in ("created", "updated", "deleted")][:count]
        by_id = {s["id"]: s["resourceForm"] for s in control.subscriptions(org.tenant_id)}
        for subscription_id in made:
            assert client.delete(subscription_id).status_code == 204
        return [by_id[i] for i in made]

    control.settings(resource_form="random", resource_form_seed=11)
    first = forms_for_new_subscriptions(9)
    control.settings(resource_form_seed=11)
    assert forms_for_new_subscriptions(9) == first
    assert set(first) == {"path", "tenant", "key"}

    person = org.users[0]
    sub = SubscriptionClient(org).subscribe(f"users/{person.mail}/events", receiver.url(paths["notify"]))
    patched = requests.patch(f"{org.base_url}/_control/subscriptions/{sub['id']}", json={"resource_form": "key"},
                             verify=org.ca_path, timeout=30)
    assert patched.status_code == 200 and patched.json()["resourceForm"] == "key"
    control.publish(org.tenant_id, person.id, "updated", item_id="AAMkAE=")
    control.flush(org.tenant_id)
    [item] = receiver.wait_for(lambda: receiver.items(paths["notify"]) or None)
    assert item["resource"] == f"Users('{person.id}')/Events('AAMkAE=')"


# ---- rooms in meetings made through the control API ------------------------------------------------------

def test_outlook_meetings_put_the_room_in_location_as_a_directory_entry(cal, org):
    """https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings (the "Conf Room
    Baker" sample): a room picked in Outlook is a `conferenceRoom` location whose `uniqueId` is
    the room's address and `uniqueIdType` "directory", next to the resource attendee; there is
    no `locationEmailAddress`."""
    room, organizer = org.rooms[0], org.users[0]
    start = at(cal.day(2), 10)
    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "Roadmap", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "rooms": [room.email]})
    assert made.status_code == 201, made.text
    event = cal.fetch(organizer.mail, made.json()["event"]["id"])

    assert {"type": "resource", "address": room.email} == {
        "type": event["attendees"][0]["type"], "address": event["attendees"][0]["emailAddress"]["address"]}
    location = event["location"]
    assert (location["displayName"], location["locationType"]) == (room.display_name, "conferenceRoom")
    assert (location["uniqueId"], location["uniqueIdType"]) == (room.email, "directory")
    assert "locationEmailAddress" not in location
    assert event["locations"] == [location]
    copy = cal.fetch(room.email, made.json()["copies"][0]["event"]["id"])
    assert copy["location"]["uniqueId"] == room.email and "locationEmailAddress" not in copy["location"]


def test_a_room_can_be_only_a_resource_attendee_with_a_typed_location(cal, org):
    """https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings (the "Cordova
    conference room" sample: typed text is a `default` location with `uniqueIdType` "private"):
    the room is found only among the attendees."""
    room, organizer = org.rooms[1], org.users[0]
    start = at(cal.day(3), 14)
    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "1:1", "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
        "rooms": [room.email], "roomPlacement": "attendee"})
    assert made.status_code == 201, made.text
    event = cal.fetch(organizer.mail, made.json()["event"]["id"])

    assert event["location"]["uniqueIdType"] == "private"
    assert event["location"]["locationType"] == "default"
    assert room.email not in (event["location"].get("uniqueId"), event["location"].get("locationEmailAddress"))
    [attendee] = [a for a in event["attendees"] if a["type"] == "resource"]
    assert attendee["emailAddress"]["address"] == room.email and attendee["status"]["response"] == "accepted"
    assert made.json()["copies"][0]["mailbox"] == room.email
    bad = cal.control_call("POST", organizer.mail, "meetings", body={
        "start": start.isoformat(), "end": start.isoformat(), "rooms": [room.email], "roomPlacement": "desk"})
    assert bad.status_code == 400


def test_several_rooms_each_get_a_directory_location(cal, org):
    """https://learn.microsoft.com/en-us/graph/api/resources/event (`locations`: the places
    where the event is held; `location` sums them up)."""
    organizer = org.users[0]
    start = at(cal.day(4), 9)
    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "All hands", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "rooms": [r.email for r in org.rooms]})
    assert made.status_code == 201, made.text
    event = made.json()["event"]
    assert [(loc["uniqueId"], loc["uniqueIdType"]) for loc in event["locations"]] == [
        (r.email, "directory") for r in org.rooms]
    assert event["location"]["displayName"] == "; ".join(r.display_name for r in org.rooms)


# ---- Retry-After ------------------------------------------------------------------------------------------

def test_a_429_can_carry_a_fractional_retry_after(org, faults):
    """https://learn.microsoft.com/en-us/graph/throttling: the sample response sends
    `Retry-After: 2.128`."""
    faults(path="/v1.0/users", status=429, retry_after=2.128, count=1, tenant=org.tenant_id)
    refused = org.session().get(f"{org.api_base}/users")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2.128"
    assert refused.json()["error"]["code"] == "TooManyRequests"


# ---- transport -----------------------------------------------------------------------------------------------

def test_creates_answer_201_with_a_location_that_reads_the_new_entity(cal, org, receiver, paths):
    """https://learn.microsoft.com/en-us/graph/api/user-post-events and
    https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions answer
    `201 Created`; OData puts the new entity's address in `Location`."""
    person = org.users[0].mail
    for path in ("events", "calendar/events"):
        created = cal.http.post(cal.url(person, *path.split("/")), json=event_body("Located", at(cal.day(1), 9)))
        assert created.status_code == 201
        assert created.headers["Location"].endswith(f"/{path}/{q(created.json()['id'])}")
        assert cal.http.get(created.headers["Location"]).json()["id"] == created.json()["id"]

    sub = SubscriptionClient(org).create(f"users/{person}/events", receiver.url(paths["notify"]))
    assert sub.status_code == 201
    assert sub.headers["Location"] == f"{org.api_base}/subscriptions/{sub.json()['id']}"
    assert SubscriptionClient(org).http.get(sub.headers["Location"]).json()["id"] == sub.json()["id"]


def test_graph_answers_carry_the_odata_content_type_and_version_and_errors_plain_json(cal, org):
    """https://learn.microsoft.com/en-us/graph/delta-query-overview (recorded responses send
    `application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8`)
    and https://learn.microsoft.com/en-us/graph/throttling (the error sample: `application/json`)."""
    graph = org.session()
    person = org.users[0].mail
    answers = [graph.get(f"{org.api_base}/users"), graph.get(f"{org.api_base}/users/{person}"),
               graph.get(f"{org.api_base}/places/microsoft.graph.room"),
               cal.http.post(cal.url(person, "events"), json=event_body("Typed", at(cal.day(1), 11))),
               graph.post(f"{org.base_url}/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/users"}]})]
    for answer in answers:
        assert answer.status_code in (200, 201)
        assert answer.headers["Content-Type"] == ODATA_JSON
        assert answer.headers["OData-Version"] == "4.0"
    missing = graph.get(f"{org.api_base}/users/nobody@{org.domain}")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    assert "OData-Version" not in missing.headers
    token = requests.post(org.token_url, verify=org.ca_path, timeout=30, data={
        "grant_type": "client_credentials", "client_id": org.client_id, "client_secret": org.client_secret,
        "scope": "https://graph.microsoft.com/.default"})
    assert not token.headers["Content-Type"].startswith(ODATA_JSON)  # Entra is not an OData service


def _connection(server) -> http.client.HTTPSConnection:
    parts = urlsplit(server.base_url)
    context = ssl.create_default_context(cafile=server.ca_path)
    return http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)


def test_one_connection_serves_many_requests_even_after_errors_and_unread_bodies(org):
    """Graph's front door keeps HTTP/1.1 connections alive (RFC 9112 §9.3 persistence; the
    default for HTTP/1.1 clients such as msgraph-sdk's httpx pool). One socket carries a GET, a
    401 for a POST whose body the emulator never reads, a chunked POST and a 404."""
    token = org.token()
    connection = _connection(org.server)
    try:
        answers = []
        for method, path, body, headers in (
                ("GET", "/v1.0/users", None, {"Authorization": f"Bearer {token}"}),
                ("POST", f"/v1.0/users/{org.users[0].id}/events", b'{"subject": "x"}' * 200, {}),
                ("POST", "/v1.0/$batch", iter([b'{"requests": [', b'{"id": "1", "method": "GET", "url": "/users"}', b"]}"]),
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                  "Transfer-Encoding": "chunked"}),
                ("GET", "/v1.0/users/nobody", None, {"Authorization": f"Bearer {token}"})):
            connection.request(method, path, body=body, headers=headers, encode_chunked=method == "POST" and
                               "Transfer-Encoding" in headers)
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Connection")))
            assert response.getheader("Content-Length") is not None
        assert answers == [(200, None), (401, None), (200, None), (404, None)]
        assert connection.sock is not None  # the same socket throughout: never closed by the server
    finally:
        connection.close()


def test_a_pooled_session_reuses_its_connection(org):
    """The same, seen from requests/urllib3 (the product's client): a run of calls travels over
    the one connection the first call opened, instead of a new connection (and TLS handshake)
    per call."""
    graph = org.session()
    assert graph.get(f"{org.api_base}/users", params={"$top": "1"}).status_code == 200
    opened = org.server.connections_opened
    for _ in range(4):
        assert graph.get(f"{org.api_base}/users", params={"$top": "1"}).status_code == 200
    assert graph.get(f"{org.api_base}/users/nobody").status_code == 404  # an error keeps it too
    assert graph.get(f"{org.api_base}/users", params={"$top": "1"}).status_code == 200
    assert org.server.connections_opened == opened


def test_stopping_the_emulator_ends_kept_alive_connections(tmp_path):
    """A stopped emulator must not keep answering over connections opened before it stopped."""
    from tests.support.emulator_fixture import start_emulator
    with start_emulator(cert_dir=str(tmp_path)) as own:
        connection = _connection(own)
        connection.request("GET", "/v1.0/users")
        assert connection.getresponse().read() and connection.sock is not None
    with pytest.raises((ConnectionError, http.client.HTTPException, socket.timeout, ssl.SSLError, OSError)):
        connection.request("GET", "/v1.0/users")
        connection.getresponse().read()
    connection.close()


# ---- $batch ---------------------------------------------------------------------------------------------------

def test_batch_items_carry_the_batchs_request_ids(org):
    """https://learn.microsoft.com/en-us/graph/json-batching: the items are parts of the one batch
    request, and their error envelopes name the batch's request-id and client-request-id."""
    graph = org.session()
    answer = graph.post(f"{org.base_url}/v1.0/$batch", headers={"client-request-id": "5a1e-batch"}, json={"requests": [
        {"id": "missing", "method": "GET", "url": f"/users/nobody@{org.domain}"},
        {"id": "bad", "method": "GET", "url": "/users?$top=5000"},
        {"id": "fine", "method": "GET", "url": "/users?$top=1"}]})
    assert answer.status_code == 200
    assert answer.headers["client-request-id"] == "5a1e-batch"
    items = {item["id"]: item for item in answer.json()["responses"]}
    for name in ("missing", "bad"):
        inner = items[name]["body"]["error"]["innerError"]
        assert inner["request-id"] == answer.headers["request-id"]
        assert inner["client-request-id"] == "5a1e-batch"
    assert items["fine"]["status"] == 200
    assert "request-id" not in items["fine"]["headers"]


# ---- events -----------------------------------------------------------------------------------------------------

def test_v1_events_have_no_beta_uid_and_refuse_to_select_it(cal, org):
    """https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0 lists
    `iCalUId`; `uid` is a beta-only property."""
    person = org.users[0].mail
    made = cal.created(person, event_body("No uid", at(cal.day(1), 15)))
    assert "uid" not in made and "iCalUId" in made
    assert "uid" not in cal.fetch(person, made["id"])
    assert all("uid" not in e for e in cal.list(person)["value"])
    assert cal.get(person, made["id"], **{"$select": "uid"}).status_code == 400


def test_every_calendar_view_delta_item_is_typed(cal, org):
    """https://learn.microsoft.com/en-us/graph/api/event-delta: items of a delta page carry
    `@odata.type` `#microsoft.graph.event`, changed ones as well as `@removed` ones."""
    person = org.users[0].mail
    start, end = at(cal.day(1), 0), at(cal.day(5), 0)
    kept = cal.created(person, event_body("Kept", start + timedelta(hours=9)))
    gone = cal.created(person, event_body("Gone", start + timedelta(hours=11)))
    window = {"startDateTime": start.isoformat(), "endDateTime": end.isoformat()}
    first = cal.http.get(cal.url(person, "calendarView", "delta"), params=window).json()
    assert {i["id"] for i in first["value"]} == {kept["id"], gone["id"]}
    assert all(i["@odata.type"] == "#microsoft.graph.event" for i in first["value"])

    assert cal.patch(person, kept["id"], {"subject": "Kept, renamed"}).status_code == 200
    assert cal.delete(person, gone["id"]).status_code == 204
    later = cal.http.get(first["@odata.deltaLink"]).json()["value"]
    assert {(i["id"], "@removed" in i) for i in later} == {(kept["id"], False), (gone["id"], True)}
    assert all(i["@odata.type"] == "#microsoft.graph.event" for i in later)


# ---- places ----------------------------------------------------------------------------------------------------

def test_rooms_answer_under_the_graph_alias_with_count_and_teams_state(org):
    """https://learn.microsoft.com/en-us/graph/api/place-list (`/places/microsoft.graph.room`,
    `$count`, `$top`; msgraph-sdk sends the `graph.room` alias) and
    https://learn.microsoft.com/en-us/graph/api/resources/room (`teamsEnabledState`)."""
    graph = org.session()
    full = graph.get(f"{org.api_base}/places/microsoft.graph.room").json()["value"]
    alias = graph.get(f"{org.api_base}/places/graph.room", params={"$top": "1", "$count": "true"}).json()
    assert alias["@odata.count"] == len(full) == 2
    assert alias["value"] == full[:1]
    assert alias["@odata.nextLink"].startswith(f"{org.api_base}/places/graph.room?")
    assert graph.get(alias["@odata.nextLink"]).json()["value"] == full[1:]
    assert all(room["teamsEnabledState"] == "unknown" for room in full)

    for spelling in ("microsoft.graph.room/$count", "graph.room/$count", "graph.room/%24count"):
        counted = graph.get(f"{org.api_base}/places/{spelling}")
        assert counted.status_code == 200 and counted.text == "2"
        assert counted.headers["Content-Type"].startswith("text/plain")
    one = graph.get(f"{org.api_base}/places/graph.room/$count",
                    params={"$filter": f"emailAddress eq '{org.rooms[0].email}'"})
    assert one.text == "1"

    changed = requests.patch(f"{org.base_url}/_control/tenants/{org.tenant_id}/rooms/{org.rooms[0].email}",
                             json={"teamsEnabledState": "enabled"}, verify=org.ca_path, timeout=30)
    assert changed.status_code == 200, changed.text
    [room] = graph.get(f"{org.api_base}/places/graph.room",
                       params={"$filter": f"emailAddress eq '{org.rooms[0].email}'"}).json()["value"]
    assert room["teamsEnabledState"] == "enabled"


def test_room_lists_and_their_rooms(org, server):
    """https://learn.microsoft.com/en-us/graph/api/place-list (`/places/microsoft.graph.roomlist`
    and `/places/{roomlist emailAddress}/microsoft.graph.roomlist/rooms`) and
    https://learn.microsoft.com/en-us/graph/api/resources/roomlist."""
    graph = org.session()
    address = f"hq-rooms@{org.domain}"
    made = control_post(server, f"/tenants/{org.tenant_id}/room-lists",
                        {"email": address, "displayName": "HQ rooms", "rooms": [org.rooms[1].email]})
    assert made.status_code == 201, made.text
    assert control_post(server, f"/tenants/{org.tenant_id}/room-lists",
                        {"email": f"x@{org.domain}", "rooms": ["no-such-room@x"]}).status_code == 400

    for spelling in ("microsoft.graph.roomlist", "graph.roomList"):
        [room_list] = graph.get(f"{org.api_base}/places/{spelling}").json()["value"]
        assert room_list["@odata.type"] == "#microsoft.graph.roomList"
        assert (room_list["emailAddress"], room_list["displayName"]) == (address, "HQ rooms")
        rooms = graph.get(f"{org.api_base}/places/{address}/{spelling}/rooms").json()["value"]
        assert [r["emailAddress"] for r in rooms] == [org.rooms[1].email]
    unknown = graph.get(f"{org.api_base}/places/nobody@{org.domain}/microsoft.graph.roomlist/rooms")
    assert unknown.status_code == 404


# ---- users $orderby and $search ------------------------------------------------------------------------------------

def test_users_sort_by_display_name_and_page_in_that_order(server, control):
    """https://learn.microsoft.com/en-us/graph/api/user-list (`$orderby`; examples sort by
    displayName) and https://learn.microsoft.com/en-us/graph/paging."""
    org = new_tenant(server, users=7)
    graph = org.session()
    names, url = [], f"{org.api_base}/users?$orderby=displayName desc&$top=3&$select=displayName"
    while url:
        page = graph.get(url)
        assert page.status_code == 200, page.text
        names += [u["displayName"] for u in page.json()["value"]]
        url = page.json().get("@odata.nextLink")
    assert names == sorted((u.display_name for u in org.users), key=str.lower, reverse=True)


def test_search_needs_consistency_level_eventual(server, control):
    """https://learn.microsoft.com/en-us/graph/aad-advanced-queries: `$search` is an advanced
    query; without `ConsistencyLevel: eventual` Graph answers 400 Request_UnsupportedQuery
    "Request with $search query parameter only works through MSGraph with a special request
    header: 'ConsistencyLevel: eventual'"."""
    org = new_tenant(server, users=4)
    graph = org.session()
    target = org.users[2]
    term = target.display_name.split()[-1][:3]
    query = {"$search": f'"displayName:{term}"', "$select": "displayName"}

    refused = graph.get(f"{org.api_base}/users", params=query)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "ConsistencyLevel: eventual" in refused.json()["error"]["message"]

    found = graph.get(f"{org.api_base}/users", params={**query, "$count": "true"},
                      headers={"ConsistencyLevel": "eventual"})
    assert found.status_code == 200, found.text
    expected = [u.display_name for u in org.users
                if any(word.lower().startswith(term.lower()) for word in u.display_name.split())]
    assert sorted(u["displayName"] for u in found.json()["value"]) == sorted(expected)
    assert found.json()["@odata.count"] == len(expected) >= 1


def test_sorting_a_filtered_list_needs_the_advanced_query(server, control):
    """https://learn.microsoft.com/en-us/graph/aad-advanced-queries: `$filter` with `$orderby`
    needs ConsistencyLevel: eventual and `$count=true`; otherwise 400 Request_UnsupportedQuery
    "Sorting not supported for current query."."""
    org = new_tenant(server, users=5)
    graph = org.session()
    query = {"$filter": "accountEnabled eq true", "$orderby": "displayName", "$select": "displayName,accountEnabled"}
    refused = graph.get(f"{org.api_base}/users", params=query)
    assert refused.status_code == 400
    assert refused.json()["error"] == {**refused.json()["error"], "code": "Request_UnsupportedQuery",
                                       "message": "Sorting not supported for current query."}
    allowed = graph.get(f"{org.api_base}/users", params={**query, "$count": "true"},
                        headers={"ConsistencyLevel": "eventual"})
    assert allowed.status_code == 200, allowed.text
    names = [u["displayName"] for u in allowed.json()["value"]]
    assert names == sorted(names, key=str.lower) and len(names) == allowed.json()["@odata.count"]
