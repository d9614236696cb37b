"""Behaviours from GRAPH.md §7 and the emulator issue that no other test covered on its own.

docs/emulator-fidelity.md maps every checklist item and issue bullet to its tests; the ones
here fill the gaps found by that audit: HTTPS and base URLs, instance discovery as MSAL uses
it, Entra's full error bodies, the documented default numbers, batching of different
subscriptions into one POST, back-off on the emulator clock, the automatic drop state, lifecycle
events users subscriptions never get, room bookings reaching a room subscription, calendar-path
writes, cancelledOccurrences, proposedNewTime, room content settings one at a time, throttling of
real mailbox endpoints, $batch over real events, client-request-id in the error envelope, the
demo seed and the 100,000-user listing.

Everything runs against emulators owned by this module (the clock moves; the demo seed and the
100,000-user listing start their own). Nothing sleeps to wait for an outcome: the receiver and the
delivery flush poll with deadlines.
"""
from __future__ import annotations

import re
import socket
import ssl
import uuid
from datetime import timedelta

import msal
import pytest
import requests

from devtools.graph_emulator import batch, event_query, identity, places, seed, users
from devtools.graph_emulator.__main__ import parse_args
from devtools.graph_emulator.clock import parse_graph_datetime
from devtools.graph_emulator.notification_settings import NotificationSettings
from devtools.graph_emulator.state import World
from devtools.graph_emulator.throttling import Limits, Throttler
from tests.support.calendar_client import CalendarClient, at, event_body, graph_time, q
from tests.support.emulator_fixture import GRAPH_SCOPE, CaSession, graph_session, new_tenant, start_emulator
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures
    SubscriptionClient, control, notification_emulator, paths, receiver,
)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENTRA_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
GRAPH_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


@pytest.fixture
def server(notification_emulator):
    return notification_emulator


@pytest.fixture
def org(server, control):
    """A fresh tenant (default roles) with three people and two rooms; delivery settings reset."""
    return new_tenant(server, users=3, rooms=2)


@pytest.fixture
def cal(org) -> CalendarClient:
    return CalendarClient(org)


def control_request(server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.base_url}/_control{path}", verify=server.ca_path, timeout=30, **kwargs)


def token_request(org, tenant_name: str | None = None, **form) -> requests.Response:
    data = {"grant_type": "client_credentials", "scope": GRAPH_SCOPE, "client_id": org.client_id,
            "client_secret": org.client_secret}
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    url = f"{org.base_url}/{tenant_name or org.tenant_id}/oauth2/v2.0/token"
    return requests.post(url, data=data, verify=org.ca_path, timeout=30)


def by_id(batch_answer: requests.Response) -> dict[str, dict]:
    return {item["id"]: item for item in batch_answer.json()["responses"]}


# ---- build: HTTPS on loopback, base URLs -----------------------------------------------------------

def test_only_https_with_a_certificate_from_the_ca_made_at_start_up(server):
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/common/discovery/instance", timeout=10)

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")

    trusting = ssl.create_default_context(cafile=server.ca_path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with trusting.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            names = tls.getpeercert()["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in names and ("DNS", "localhost") in names


def test_the_command_line_only_binds_loopback_addresses():
    for host in ("127.0.0.1", "::1", "localhost"):
        assert parse_args(["--host", host]).host == host
    with pytest.raises(SystemExit):
        parse_args(["--host", "0.0.0.0"])


def test_base_urls_mirror_entra_and_graph(server, org):
    assert server.api_base == f"{server.base_url}/v1.0"
    for name in (org.tenant_id, org.domain):
        config = requests.get(f"{server.base_url}/{name}/v2.0/.well-known/openid-configuration",
                              verify=org.ca_path, timeout=30).json()
        # Like login.microsoftonline.com, endpoints name the tenant by id even when asked by domain.
        assert config["token_endpoint"] == f"{server.base_url}/{org.tenant_id}/oauth2/v2.0/token"
        assert config["authorization_endpoint"] == f"{server.base_url}/{org.tenant_id}/oauth2/v2.0/authorize"
        assert config["issuer"] == f"{server.base_url}/{org.tenant_id}/v2.0"


# ---- the token endpoint and discovery (§7 items 2-5) ----------------------------------------------

def test_instance_discovery_answers_with_the_requested_tenants_discovery_document(server, org):
    response = requests.get(f"{server.base_url}/common/discovery/instance", verify=org.ca_path, timeout=30, params={
        "api-version": "1.1", "authorization_endpoint": f"{server.base_url}/{org.tenant_id}/oauth2/v2.0/authorize"})

    assert response.status_code == 200
    body = response.json()
    discovery = f"{server.base_url}/{org.tenant_id}/v2.0/.well-known/openid-configuration"
    assert body["tenant_discovery_endpoint"] == discovery
    assert body["metadata"] and all(group["aliases"] for group in body["metadata"])


def test_msal_runs_instance_discovery_against_the_emulator(server, org):
    before = server.world.request_counts["instance-discovery"]
    app = msal.ConfidentialClientApplication(
        org.client_id, client_credential=org.client_secret, authority=org.authority,
        instance_discovery=f"{server.base_url}/common/discovery/instance", http_client=graph_session(org.ca_path))

    result = app.acquire_token_for_client([GRAPH_SCOPE])

    assert "access_token" in result, result
    assert server.world.request_counts["instance-discovery"] > before


class LoginRewritingSession(CaSession):
    """MSAL keeps Microsoft's own authority; the requests are sent to the emulator instead (the
    http_client route GRAPH.md §1.4 describes, with instance discovery left on)."""

    def __init__(self, ca_path: str, base_url: str) -> None:
        super().__init__(ca_path)
        self.base_url = base_url

    def request(self, method, url, **kwargs):
        return super().request(method, url.replace("https://login.microsoftonline.com", self.base_url), **kwargs)


def test_msal_with_microsofts_authority_and_instance_discovery_on(server, org):
    authority = f"https://login.microsoftonline.com/{org.tenant_id}"
    good = msal.ConfidentialClientApplication(org.client_id, client_credential=org.client_secret, authority=authority,
                                              http_client=LoginRewritingSession(org.ca_path, server.base_url))
    assert "access_token" in good.acquire_token_for_client([GRAPH_SCOPE])

    before = server.world.request_counts["instance-discovery"]
    wrong = msal.ConfidentialClientApplication(org.client_id, client_credential="not-the-secret", authority=authority,
                                               http_client=LoginRewritingSession(org.ca_path, server.base_url))
    result = wrong.acquire_token_for_client([GRAPH_SCOPE])

    # After an error MSAL looks up authority aliases; without `metadata` it would raise KeyError.
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert server.world.request_counts["instance-discovery"] > before


def test_msal_with_verify_and_its_own_http_client(org, monkeypatch):
    # These variables silently override `verify=` in requests (GRAPH.md §1.4).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    app = msal.ConfidentialClientApplication(org.client_id, client_credential=org.client_secret,
                                             authority=org.authority, verify=org.ca_path, instance_discovery=False)
    assert "access_token" in app.acquire_token_for_client([GRAPH_SCOPE])

    stranger = str(uuid.uuid4())
    unknown = msal.ConfidentialClientApplication(stranger, client_credential=org.client_secret,
                                                 authority=org.authority, verify=org.ca_path, instance_discovery=False)
    result = unknown.acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "unauthorized_client" and result["error_codes"] == [700016]
    assert stranger in result["error_description"]


def _expired_secret_tenant(server):
    expired = new_tenant(server, secret_expires_at=server.world.clock.now() - timedelta(days=1))
    return token_request(expired)


@pytest.mark.parametrize("case, status, error, code", [
    ("wrong secret", 401, "invalid_client", 7000215),
    ("expired secret", 401, "invalid_client", 7000222),
    ("unknown app", 400, "unauthorized_client", 700016),
    ("unknown tenant", 400, "invalid_tenant", 90002),
    ("unknown tenant discovery", 400, "invalid_tenant", 90002),
    ("no secret", 401, "invalid_client", 7000218),
    ("common tenant", 400, "invalid_request", 50059),
])
def test_token_errors_carry_entras_full_body(server, org, case, status, error, code):
    response = {
        "wrong secret": lambda: token_request(org, client_secret="not-the-secret"),
        "expired secret": lambda: _expired_secret_tenant(server),
        "unknown app": lambda: token_request(org, client_id=str(uuid.uuid4())),
        "unknown tenant": lambda: token_request(org, tenant_name=str(uuid.uuid4())),
        "unknown tenant discovery": lambda: requests.get(
            f"{server.base_url}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration", verify=org.ca_path, timeout=30),
        "no secret": lambda: token_request(org, client_secret=None),
        "common tenant": lambda: token_request(org, tenant_name="common"),
    }[case]()

    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert ENTRA_STAMP.match(body["timestamp"])
    assert GUID.match(body["trace_id"]) and GUID.match(body["correlation_id"])
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert f"Correlation ID: {body['correlation_id']}" in body["error_description"]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"


def test_the_token_endpoint_ignores_form_fields_it_does_not_know(org):
    response = token_request(org, client_info="1", claims_challenge_hint="x", x_unknown="y")

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer" and response.json()["expires_in"] > 300


# ---- documented numbers are the defaults ------------------------------------------------------------

def test_documented_numbers_are_the_defaults():
    settings = NotificationSettings()
    assert settings.validation_timeout_seconds == 10  # handshake budget
    assert settings.ack_timeout_seconds == 3  # 2xx within 3 s counts as delivered
    assert settings.retry_timeout_seconds == 10  # retried attempts get 10 s
    assert settings.retry_window_seconds == 4 * 3600  # retries for up to 4 h
    assert settings.slow_hold_seconds == 600 and settings.drop_hold_seconds == 600
    assert (settings.slow_ratio, settings.drop_ratio, settings.health_window_seconds) == (0.10, 0.15, 600)
    assert settings.min_lifetime_minutes == 45
    assert settings.max_lifetime_minutes_events == 10070  # observed live limit; the docs say 10,080
    assert settings.max_lifetime_minutes_users == 41760
    assert (settings.mailbox_subscription_quota, settings.user_subscriptions_per_app,
            settings.user_subscriptions_per_tenant) == (1000, 100, 1000)
    limits = Limits()
    assert (limits.mailbox_concurrency, limits.mailbox_requests, limits.mailbox_window_seconds) == (4, 10_000, 600)
    assert (limits.mailbox_upload_bytes, limits.mailbox_upload_window_seconds) == (150 * 1024 * 1024, 300)
    assert identity.TOKEN_LIFETIME_SECONDS > 300  # MSAL treats tokens with < 5 min left as expired
    assert users.MAX_PAGE == 999 and users.DELTA_TOKEN_LIFETIME == timedelta(days=7)
    assert places.DEFAULT_PAGE == 100 and event_query.DEFAULT_PAGE_SIZE == 10
    assert (batch.MAX_REQUESTS, batch.PARALLEL_REQUESTS) == (20, 4)


# ---- delivery ---------------------------------------------------------------------------------------

def test_one_post_can_carry_items_of_different_subscriptions(org, receiver, paths, control):
    graph = SubscriptionClient(org)
    room = org.rooms[0]
    url = receiver.url(paths["notify"])
    created = graph.subscribe(f"users/{room.email}/events", url, change_type="created")
    updated = graph.subscribe(f"users/{room.email}/events", url, change_type="updated")

    control.publish(org.tenant_id, room.email, "created,updated", item_id="shared-1")
    control.flush(org.tenant_id)

    [post] = receiver.notifications(paths["notify"])
    items = post.json()["value"]
    assert sorted((i["subscriptionId"], i["changeType"]) for i in items) == sorted(
        [(created["id"], "created"), (updated["id"], "updated")])
    assert {i["clientState"] for i in items} == {created["clientState"], updated["clientState"]}


def test_retries_back_off_exponentially_on_the_emulator_clock(org, receiver, paths, control):
    control.settings(backoff_factor=1.0)  # Graph-like pace: 10 s, 20 s, 40 s... (emulator time)
    graph = SubscriptionClient(org)
    graph.subscribe(f"users/{org.rooms[0].email}/events", receiver.url(paths["notify"]))
    receiver.answer_notifications(paths["notify"], status=503)

    def log_of(count: int):
        entries = control.deliveries(org.tenant_id, kind="notification")
        return entries if len(entries) >= count else None

    control.publish(org.tenant_id, org.rooms[0].email, "updated", item_id="retry-1")
    log = receiver.wait_for(lambda: log_of(1))
    for attempt, wait in enumerate((10, 20, 40), start=1):
        last = log[-1]
        assert (last["outcome"], last["status"], last["attempt"]) == ("failed", 503, attempt)
        gap = (parse_graph_datetime(last["nextAttemptDateTime"]) - parse_graph_datetime(last["time"])).total_seconds()
        assert wait <= gap < wait + 2
        if attempt == 3:
            receiver.answer_notifications(paths["notify"], status=202)
        control.advance(wait)
        log = receiver.wait_for(lambda: log_of(attempt + 1))
    assert [(e["outcome"], e["attempt"]) for e in log] == [
        ("failed", 1), ("failed", 2), ("failed", 3), ("delivered", 4)]
    assert len(receiver.notifications(paths["notify"])) == 4


def test_endpoint_slower_than_the_retry_timeout_enters_the_drop_state(org, receiver, paths, control):
    # Scaled down: "3 s" is 0.1 s and "10 s" 0.3 s; two samples decide the state.
    control.settings(ack_timeout_seconds=0.1, retry_timeout_seconds=0.3, health_min_sample=2)
    graph = SubscriptionClient(org)
    room = org.rooms[0]
    url = receiver.url(paths["notify"])
    sub = graph.subscribe(f"users/{room.email}/events", url, lifecycleNotificationUrl=receiver.url(paths["lifecycle"]))
    receiver.answer_notifications(paths["notify"], delay=1.0)

    def health() -> str:
        return control.call("GET", "/deliveries", params={"tenant": org.tenant_id}).json()["health"].get(url, "")

    def outcome_of(item_id: str) -> list[str]:
        return [e["outcome"] for e in control.deliveries(org.tenant_id, kind="notification")
                if any(i["resource"].endswith(f"/{item_id}") for i in e["items"])]

    control.publish(org.tenant_id, room.email, "updated", item_id="slow-1")
    receiver.wait_for(lambda: health() == "drop")
    receiver.answer_notifications(paths["notify"], delay=0)
    receiver.wait_for(lambda: "delivered" in outcome_of("slow-1"))  # items already tried keep being retried

    control.publish(org.tenant_id, room.email, "updated", item_id="later-1")
    missed = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert [(i["lifecycleEvent"], i["subscriptionId"]) for i in missed] == [("missed", sub["id"])]
    assert outcome_of("later-1") == ["dropped"]
    assert not any(i["resourceData"]["id"] == "later-1" for i in receiver.items(paths["notify"]))

    control.advance(601)  # the drop state lasts ten minutes
    control.publish(org.tenant_id, room.email, "updated", item_id="after-1")
    receiver.wait_for(lambda: any(i["resourceData"]["id"] == "after-1" for i in receiver.items(paths["notify"])))
    assert health() == "normal"


def test_users_subscriptions_never_get_missed_or_subscription_removed(org, receiver, paths, control):
    graph = SubscriptionClient(org)
    users_sub = graph.subscribe("users", receiver.url(paths["notify"]), change_type="updated",
                                lifecycleNotificationUrl=receiver.url(paths["lifecycle"]))
    events_lifecycle = paths["lifecycle"] + "-events"
    graph.subscribe(f"users/{org.rooms[0].email}/events", receiver.url(paths["notify"] + "-events"),
                    lifecycleNotificationUrl=receiver.url(events_lifecycle))
    control.switches(tenant=org.tenant_id, drop=1.0)

    control.publish(org.tenant_id, org.users[0].id, "updated", kind="users")
    control.publish(org.tenant_id, org.rooms[0].email, "updated")
    [events_missed] = receiver.wait_for(lambda: receiver.items(events_lifecycle))
    control.flush(org.tenant_id)

    assert events_missed["lifecycleEvent"] == "missed"
    dropped = [e for e in control.deliveries(org.tenant_id, kind="notification") if e["outcome"] == "dropped"]
    assert f"Users/{org.users[0].id}" in [i["resource"] for e in dropped for i in e["items"]]
    assert receiver.items(paths["lifecycle"]) == []

    for event in ("missed", "subscriptionRemoved"):
        refused = control.call("POST", f"/subscriptions/{users_sub['id']}/lifecycle",
                               json={"lifecycle_event": event}, expect=400)
        assert event in refused.json()["error"]["message"]
    control.lifecycle(users_sub["id"], "reauthorizationRequired")
    [notice] = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert notice["lifecycleEvent"] == "reauthorizationRequired" and notice["subscriptionId"] == users_sub["id"]

    control.call("DELETE", f"/subscriptions/{users_sub['id']}", params={"notify": "true"}, expect=204)
    control.flush(org.tenant_id)
    assert len(receiver.items(paths["lifecycle"])) == 1
    assert graph.get(users_sub["id"]).status_code == 404


def test_a_room_booking_made_in_outlook_reaches_the_rooms_subscription(org, cal, receiver, paths, control):
    room, organizer = org.rooms[0], org.users[0]
    sub = SubscriptionClient(org).subscribe(f"users/{room.email}/events", receiver.url(paths["notify"]))
    start = at(cal.day(2), 9)

    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "Made in Outlook", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "rooms": [room.email]})
    assert made.status_code == 201, made.text
    meeting_id, copy_id = made.json()["event"]["id"], made.json()["copies"][0]["event"]["id"]
    control.flush(org.tenant_id)

    def changes() -> list[str]:
        return [i["changeType"] for i in receiver.items(paths["notify"]) if i["resourceData"]["id"] == copy_id]

    assert changes()[:2] == ["created", "updated"]
    for item in receiver.items(paths["notify"]):
        assert item["subscriptionId"] == sub["id"] and item["clientState"] == sub["clientState"]
        # The subscription's resource form (random per subscription) decides the spelling.
        assert item["resource"].lower() in {
            f"users/{room.user_id}/events/{item['resourceData']['id']}".lower(),
            f"users/{room.user_id}@{org.tenant_id}/events/{item['resourceData']['id']}".lower(),
            f"users('{room.user_id}')/events('{item['resourceData']['id']}')".lower()}
    assert meeting_id not in {i["resourceData"]["id"] for i in receiver.items(paths["notify"])}

    seen = len(changes())
    later = start + timedelta(hours=3)
    moved = cal.control_call("PATCH", organizer.mail, "meetings", q(meeting_id),
                             body={"start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat()})
    assert moved.status_code == 200
    control.flush(org.tenant_id)
    assert changes()[seen:] and set(changes()[seen:]) == {"updated"}
    last = [i for i in receiver.items(paths["notify"]) if i["resourceData"]["id"] == copy_id][-1]
    assert last["resourceData"]["@odata.etag"] == cal.fetch(room.email, copy_id)["@odata.etag"]

    seen = len(changes())
    assert cal.control_call("POST", organizer.mail, "meetings", q(meeting_id), "cancel").status_code == 204
    control.flush(org.tenant_id)
    assert changes()[seen:] and changes()[-1] == "updated"  # RemoveCanceledMeetings is off: the copy stays
    assert cal.fetch(room.email, copy_id)["isCancelled"] is True


# ---- events ----------------------------------------------------------------------------------------

def test_create_update_and_delete_through_the_calendar_path(cal, org):
    person = org.users[0]
    made = cal.http.post(cal.url(person.id, "calendar", "events"), json=event_body("Via calendar", at(cal.day(1), 9)))
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]
    assert cal.fetch(person.user_principal_name, event_id)["subject"] == "Via calendar"

    listed = cal.http.get(cal.url(person.user_principal_name, "calendar", "events")).json()["value"]
    assert [e["id"] for e in listed] == [event_id]

    gone = cal.http.delete(cal.url(person.user_principal_name, "calendar", "events", q(event_id)))
    assert gone.status_code == 204
    assert cal.get(person.id, event_id).status_code == 404


def test_calendar_view_window_is_not_moved_by_prefer_timezone(cal, org):
    person = org.users[0].mail
    day = cal.day(3).strftime("%Y-%m-%d")
    event = cal.created(person, {"subject": "Ten UTC", "start": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
                                 "end": {"dateTime": f"{day}T11:00:00", "timeZone": "UTC"}})
    tokyo = {"Prefer": 'outlook.timezone="Tokyo Standard Time"'}

    def view(start: str, end: str) -> list[dict]:
        response = cal.http.get(cal.url(person, "calendarView"), headers=tokyo,
                                params={"startDateTime": start, "endDateTime": end})
        assert response.status_code == 200, response.text
        return response.json()["value"]

    # Read as UTC (no offset), not as Tokyo time: 09:00-12:00 UTC holds the event.
    [found] = view(f"{day}T09:00:00", f"{day}T12:00:00")
    assert found["id"] == event["id"]
    assert found["start"] == {"dateTime": f"{day}T19:00:00.0000000", "timeZone": "Tokyo Standard Time"}
    # An offset inside the value is honoured.
    assert [e["id"] for e in view(f"{day}T18:00:00+09:00", f"{day}T21:00:00+09:00")] == [event["id"]]
    assert view(f"{day}T00:00:00+09:00", f"{day}T03:00:00+09:00") == []


def test_cancelled_occurrences_come_back_only_when_selected_on_the_series_master(cal, org):
    person = org.users[0].mail
    monday = cal.day(1) + timedelta(days=(7 - cal.day(1).weekday()) % 7)
    first = monday.strftime("%Y-%m-%d")
    # 00:30 in Amsterdam is the evening before in UTC: the OID date is the series' local date.
    master = cal.created(person, {
        "subject": "Early sync",
        "start": {"dateTime": f"{first}T00:30:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": f"{first}T01:00:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                       "range": {"type": "numbered", "startDate": first, "numberOfOccurrences": 3}}})
    occurrences = cal.view(person, monday - timedelta(days=2), monday + timedelta(days=20))
    assert len(occurrences) == 3
    assert cal.delete(person, occurrences[1]["id"]).status_code == 204

    selected = cal.get(person, master["id"], **{"$select": "subject,cancelledOccurrences"}).json()

    second_local_day = (monday + timedelta(days=7)).strftime("%Y-%m-%d")
    assert selected["cancelledOccurrences"] == [f"OID.{master['id']}.{second_local_day}"]
    assert "cancelledOccurrences" not in cal.fetch(person, master["id"])
    listed = cal.list(person, **{"$select": "subject,cancelledOccurrences"})["value"]
    assert [("cancelledOccurrences" in e) for e in listed] == [False]
    occurrence = cal.get(person, occurrences[0]["id"], **{"$select": "cancelledOccurrences"}).json()
    assert "cancelledOccurrences" not in occurrence


def test_proposed_new_time_needs_send_response_and_an_organizer_who_allows_it(cal, org):
    organizer, invitee = org.users[0], org.users[1]
    cal.created(organizer.mail, event_body("Open", at(cal.day(2), 10), attendees=(invitee.mail,)))
    cal.created(organizer.mail, event_body("Closed", at(cal.day(2), 14), attendees=(invitee.mail,),
                                           allowNewTimeProposals=False))
    copies = {e["subject"]: e for e in cal.list(invitee.mail)["value"]}
    later = at(cal.day(3), 10)
    proposal = {"proposedNewTime": {"start": graph_time(later), "end": graph_time(later + timedelta(hours=1))}}

    refused = [
        cal.action(invitee.mail, copies["Open"]["id"], "decline", {**proposal, "sendResponse": False}),
        cal.action(invitee.mail, copies["Open"]["id"], "accept", proposal),
        cal.action(invitee.mail, copies["Closed"]["id"], "decline", proposal),
        cal.action(invitee.mail, copies["Closed"]["id"], "tentativelyAccept", proposal),
    ]
    assert [r.status_code for r in refused] == [400] * 4
    assert cal.fetch(invitee.mail, copies["Closed"]["id"])["responseStatus"]["response"] == "notResponded"

    assert cal.action(invitee.mail, copies["Open"]["id"], "tentativelyAccept", proposal).status_code == 202
    assert cal.fetch(invitee.mail, copies["Open"]["id"])["responseStatus"]["response"] == "tentativelyAccepted"
    assert cal.action(invitee.mail, copies["Open"]["id"], "decline", proposal).status_code == 202
    assert cal.get(invitee.mail, copies["Open"]["id"]).status_code == 404


@pytest.mark.parametrize("settings, changed", [
    ({"AddOrganizerToSubject": False}, {"subject": ""}),  # DeleteSubject alone empties the subject
    ({"DeleteSubject": False, "AddOrganizerToSubject": False}, {"subject": "Budget review"}),
    ({"DeleteComments": False}, {"bodyPreview": "Agenda attached"}),
    ({"RemovePrivateProperty": False}, {"sensitivity": "private"}),
])
def test_each_room_content_setting_on_its_own(cal, org, settings, changed):
    room, organizer = org.rooms[0], org.users[0]
    cal.room_settings(room.email, **settings)
    cal.created(organizer.mail, event_body("Budget review", at(cal.day(2), 10), rooms=(room.email,),
                                           sensitivity="private", body={"contentType": "text",
                                                                        "content": "Agenda attached"}))
    [copy] = cal.list(room.email)["value"]
    expected = {"subject": organizer.display_name, "bodyPreview": "", "sensitivity": "normal", **changed}
    assert {key: copy[key] for key in expected} == expected


def test_auto_update_rooms_leave_the_request_tentative_and_none_rooms_ignore_it(cal, org):
    organizer = org.users[0]
    tentative_room, silent_room = org.rooms
    cal.room_settings(tentative_room.email, AutomateProcessing="AutoUpdate")
    cal.room_settings(silent_room.email, AutomateProcessing="None")

    made = cal.created(organizer.mail, event_body("Review", at(cal.day(2), 10),
                                                  rooms=(tentative_room.email, silent_room.email)))

    statuses = {a["emailAddress"]["address"]: a["status"]["response"]
                for a in cal.fetch(organizer.mail, made["id"])["attendees"]}
    assert statuses == {tentative_room.email: "none", silent_room.email: "none"}
    [copy] = cal.list(tentative_room.email)["value"]
    assert copy["responseStatus"]["response"] == "notResponded" and copy["showAs"] == "tentative"
    assert copy["subject"] == "Review"  # the AutoAccept content rules do not apply
    assert cal.list(silent_room.email)["value"] == []


# ---- throttling, batching, the error envelope -----------------------------------------------------------

def test_default_outlook_limits_are_four_at_once_and_ten_thousand_per_ten_minutes():
    throttler, limits = Throttler(World()), Limits()
    mailbox = ("tenant", "app", "mailbox")
    for _ in range(4):
        assert throttler.admit_mailbox(mailbox, "room@x", limits, now=0.0) is None
    fifth = throttler.admit_mailbox(mailbox, "room@x", limits, now=0.0)
    assert (fifth.status, fifth.code) == (429, "ApplicationThrottled") and fifth.headers["Retry-After"] == "1"
    for _ in range(4):
        throttler.release_mailbox(mailbox)

    for _ in range(10_000 - 4):
        assert throttler.admit_mailbox(mailbox, "room@x", limits, now=1.0) is None
        throttler.release_mailbox(mailbox)
    over = throttler.admit_mailbox(mailbox, "room@x", limits, now=2.0)

    assert (over.status, over.code) == (429, "TooManyRequests")
    assert over.headers["Retry-After"] == "598"  # the four from t=0 leave the window at t=600
    assert throttler.admit_mailbox(("tenant", "app", "other"), "other@x", limits, now=2.0) is None
    assert throttler.admit_mailbox(("tenant", "other-app", "mailbox"), "room@x", limits, now=2.0) is None
    assert throttler.admit_mailbox(mailbox, "room@x", limits, now=600.0) is None


def test_real_mailbox_endpoints_count_against_one_budget_per_app_and_mailbox(server, cal, org):
    limits = control_request(server, "PUT", f"/throttling/tenants/{org.tenant_id}", json={"mailbox_requests": 3})
    assert limits.status_code == 200, limits.text
    person, other = org.users[0], org.users[1]
    day = cal.day(1)
    window = {"startDateTime": day.isoformat(), "endDateTime": (day + timedelta(days=1)).isoformat()}

    allowed = [cal.http.get(cal.url(person.id, "events")),
               cal.http.get(cal.url(person.user_principal_name, "calendar", "events")),
               cal.http.get(cal.url(person.mail.upper(), "calendarView"), params=window)]
    refused = cal.http.get(cal.url(person.id, "events"))
    elsewhere = cal.http.get(cal.url(other.id, "events"))

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "TooManyRequests"
    assert 0 < float(refused.headers["Retry-After"]) <= 600
    assert elsewhere.status_code == 200


def test_batch_over_real_event_endpoints(server, cal, org):
    person = org.users[0]
    created = cal.http.post(f"{server.api_base}/$batch", json={"requests": [
        {"id": "1", "method": "POST", "url": f"/users/{person.id}/events",
         "headers": {"Content-Type": "application/json"}, "body": event_body("Batched", at(cal.day(1), 9))},
        {"id": "2", "method": "GET", "url": f"/users/{person.id}/events?$select=subject", "dependsOn": ["1"]},
    ]})
    assert created.status_code == 200
    answers = by_id(created)
    assert answers["1"]["status"] == 201 and answers["1"]["body"]["subject"] == "Batched"
    assert answers["2"]["status"] == 200 and [e["subject"] for e in answers["2"]["body"]["value"]] == ["Batched"]
    event_id = answers["1"]["body"]["id"]

    failed = by_id(cal.http.post(f"{server.api_base}/$batch", json={"requests": [
        {"id": "a", "method": "GET", "url": f"/users/{person.id}/events/{q('AAMkAGmissing=')}"},
        {"id": "b", "method": "DELETE", "url": f"/users/{person.id}/events/{q(event_id)}", "dependsOn": ["a"]},
    ]}))
    assert failed["a"]["status"] == 404 and failed["a"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert failed["b"]["status"] == 424
    assert cal.get(person.id, event_id).status_code == 200  # the dependent DELETE never ran


def test_the_error_envelope_carries_request_ids_and_echoes_client_request_id(server, cal, org):
    person = org.users[0]
    sent = str(uuid.uuid4())
    failures = [
        cal.http.get(cal.item(person.id, "AAMkAGmissing="), headers={"client-request-id": sent}),
        cal.http.get(f"{server.api_base}/users/nobody@{org.domain}", headers={"client-request-id": sent}),
        cal.http.get(f"{server.api_base}/subscriptions/{uuid.uuid4()}", headers={"client-request-id": sent}),
        requests.get(cal.url(person.id, "events"), verify=org.ca_path, timeout=30, headers={"client-request-id": sent}),
    ]
    assert [r.status_code for r in failures] == [404, 404, 404, 401]
    for response in failures:
        error = response.json()["error"]
        assert error["code"] and error["message"]
        inner = error["innerError"]
        assert GRAPH_DATE.match(inner["date"])
        assert GUID.match(inner["request-id"]) and inner["request-id"] == response.headers["request-id"]
        assert inner["client-request-id"] == sent == response.headers["client-request-id"]

    anonymous = cal.http.get(cal.item(person.id, "AAMkAGmissing="))
    inner = anonymous.json()["error"]["innerError"]
    assert inner["client-request-id"] == inner["request-id"] == anonymous.headers["request-id"]


# ---- control API and the demo seed ---------------------------------------------------------------------

def test_control_api_moves_and_cancels_a_recurring_meeting_with_a_room(cal, org):
    room, organizer = org.rooms[0], org.users[0]
    start = at(cal.day(1), 13)
    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "Weekly planning", "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
        "rooms": [room.email],
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [start.strftime("%A").lower()]},
                       "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 3}}})
    assert made.status_code == 201, made.text
    master, [copy] = made.json()["event"], made.json()["copies"]
    assert copy["event"]["type"] == "seriesMaster"
    window = (start - timedelta(hours=1), start + timedelta(days=15))

    later = start + timedelta(hours=2)
    moved = cal.control_call("PATCH", organizer.mail, "meetings", q(master["id"]),
                             body={"start": later.isoformat(), "end": (later + timedelta(minutes=30)).isoformat()})
    assert moved.status_code == 200, moved.text
    room_view = cal.view(room.email, *window)
    assert len(room_view) == 3
    assert {o["start"]["dateTime"][11:16] for o in room_view} == {later.strftime("%H:%M")}

    assert cal.control_call("POST", organizer.mail, "meetings", q(master["id"]), "cancel").status_code == 204
    assert cal.fetch(room.email, copy["event"]["id"])["isCancelled"] is True
    rebooked = cal.created(org.users[1].mail, event_body("Rebooked", later, 30, rooms=(room.email,)))
    statuses = {a["emailAddress"]["address"]: a["status"]["response"]
                for a in cal.fetch(org.users[1].mail, rebooked["id"])["attendees"]}
    assert statuses[room.email] == "accepted"


def test_demo_seed_has_one_tenant_printed_credentials_people_and_rooms_in_two_zones():
    world = World()
    printed = seed.seed_demo(world)

    assert set(printed) == {"GRAPH_TENANT_ID", "GRAPH_TENANT_DOMAIN", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET"}
    [tenant] = world.tenants.values()
    assert world.find_tenant(printed["GRAPH_TENANT_DOMAIN"]) is tenant and tenant.id == printed["GRAPH_TENANT_ID"]
    people = [u for u in tenant.users.values() if not u.is_room]
    assert len(people) == 20 and [u.account_enabled for u in people].count(False) == 1
    assert len(tenant.rooms) == 5
    assert {room.time_zone for room in tenant.rooms.values()} == {"Europe/Amsterdam", "America/New_York"}

    with start_emulator(world=world) as server:
        response = requests.post(f"{server.base_url}/{printed['GRAPH_TENANT_DOMAIN']}/oauth2/v2.0/token",
                                 verify=server.ca_path, timeout=30, data={
                                     "client_id": printed["GRAPH_CLIENT_ID"],
                                     "client_secret": printed["GRAPH_CLIENT_SECRET"],
                                     "grant_type": "client_credentials", "scope": GRAPH_SCOPE})
        assert response.status_code == 200, response.text
        graph = graph_session(server.ca_path, response.json()["access_token"])
        assert len(graph.get(f"{server.api_base}/places/microsoft.graph.room").json()["value"]) == 5
        lists = graph.get(f"{server.api_base}/places/microsoft.graph.roomlist").json()["value"]
        assert sorted(len(graph.get(f"{server.api_base}/places/{room_list['emailAddress']}/microsoft.graph.roomlist/rooms")
                          .json()["value"]) for room_list in lists) == [2, 3]  # one list per building
        room = next(iter(tenant.rooms.values()))
        assert graph.get(f"{server.api_base}/users/{room.email}/events").status_code == 200

# Speed (100,000 users listed in pages of 999) is measured by bench/emulator_users.py, which
# prints its figures; tests never assert timings.
