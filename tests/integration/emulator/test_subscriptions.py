"""The emulator's /subscriptions API against Graph's documented rules (GRAPH.md §2.1-2.6, §7
items 7-14): required fields, the validation handshake for both URLs, lifetimes, duplicates,
quotas, permissions, renew/reauthorize/delete, and visibility per app."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote_plus

import pytest

from devtools.graph_emulator.clock import parse_graph_datetime
from tests.support.emulator_fixture import new_tenant
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures
    SubscriptionClient, control, error_of, graph, notification_emulator, paths, receiver, tenant,
)
from tests.support.receiver import NotificationReceiver

DOCUMENTED_FIELDS = {
    "@odata.context", "id", "resource", "applicationId", "changeType", "clientState", "notificationUrl",
    "lifecycleNotificationUrl", "expirationDateTime", "creatorId", "latestSupportedTlsVersion",
    "includeResourceData", "encryptionCertificate", "encryptionCertificateId", "notificationContentType",
}
TOKEN_PATTERN = re.compile(
    r"^Validation: Testing client application reachability for subscription Request-Id: [0-9a-f-]{36}$")


def room_events(tenant) -> str:
    return f"users/{tenant.rooms[0].email}/events"


# ---- create and the handshake ------------------------------------------------------------------------

def test_create_validates_both_urls_then_answers_201_with_documented_fields(graph, tenant, receiver, paths):
    notify_url = receiver.url(paths["notify"], code="function-key")
    lifecycle_url = receiver.url(paths["lifecycle"])

    response = graph.create(room_events(tenant), notify_url, lifecycleNotificationUrl=lifecycle_url)

    assert response.status_code == 201, response.text
    body = response.json()
    assert DOCUMENTED_FIELDS <= set(body)
    assert body["applicationId"] == tenant.client_id
    assert body["resource"] == room_events(tenant)
    assert body["changeType"] == "created,updated,deleted"
    assert body["notificationUrl"] == notify_url and body["lifecycleNotificationUrl"] == lifecycle_url
    assert body["includeResourceData"] is False
    assert body["encryptionCertificate"] is None and body["encryptionCertificateId"] is None
    assert body["notificationContentType"] == "application/json"
    assert body["latestSupportedTlsVersion"] == "v1_2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", body["expirationDateTime"])
    for path in (paths["notify"], paths["lifecycle"]):
        [validation] = receiver.validations(path)
        assert validation.method == "POST"
        assert validation.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert TOKEN_PATTERN.match(validation.validation_token)
        # Sent URL-encoded: only a real decoder recovers the spaces and colons.
        raw = validation.raw_query.split("validationToken=", 1)[1]
        assert " " not in raw and ":" not in raw and unquote_plus(raw) == validation.validation_token
    assert receiver.validations(paths["notify"])[0].query["code"] == "function-key"


@pytest.mark.parametrize("missing", ["changeType", "notificationUrl", "resource", "expirationDateTime"])
def test_missing_required_property_is_named_and_nothing_is_validated(graph, tenant, receiver, paths, missing):
    body = {"changeType": "updated", "notificationUrl": receiver.url(paths["notify"]),
            "resource": room_events(tenant), "expirationDateTime": graph.expiry_in(60)}
    del body[missing]

    response = graph.http.post(graph.base, json=body)

    assert response.status_code == 400
    assert missing in error_of(response)["message"]
    assert receiver.requests(paths["notify"]) == []


@pytest.mark.parametrize("mode, status, code, fragment", [
    ("status", 403, "ValidationError", "HTTP status code is 'Forbidden'"),
    ("encoded", 200, "ValidationError", "must respond with 200 OK"),
    ("wrong", 200, "ValidationError", "must respond with 200 OK"),
    ("json", 200, "ValidationError", "must respond with 200 OK"),
])
def test_failed_handshake_creates_nothing(graph, tenant, receiver, paths, mode, status, code, fragment):
    receiver.answer_validation(paths["notify"], mode=mode, status=status)

    response = graph.create(room_events(tenant), receiver.url(paths["notify"]))

    assert response.status_code == 400
    assert error_of(response)["code"] == code and fragment in error_of(response)["message"]
    assert graph.list_all() == []


def test_slow_handshake_times_out(graph, tenant, receiver, paths, control):
    control.settings(validation_timeout_seconds=0.3)
    receiver.answer_validation(paths["notify"], delay=1.0)

    response = graph.create(room_events(tenant), receiver.url(paths["notify"]))

    assert response.status_code == 400
    assert error_of(response) | {"innerError": None} == {
        "code": "InvalidRequest", "message": "Subscription validation request timed out.", "innerError": None}
    assert graph.list_all() == []


def test_failing_lifecycle_url_handshake_also_blocks_creation(graph, tenant, receiver, paths):
    receiver.answer_validation(paths["lifecycle"], mode="status", status=500)

    response = graph.create(room_events(tenant), receiver.url(paths["notify"]),
                            lifecycleNotificationUrl=receiver.url(paths["lifecycle"]))

    assert response.status_code == 400 and error_of(response)["code"] == "ValidationError"
    assert len(receiver.validations(paths["notify"])) == 1
    assert graph.list_all() == []


def test_plain_http_only_for_loopback_and_only_while_allowed(graph, tenant, receiver, paths, control):
    remote = graph.create(room_events(tenant), "http://hooks.example.com/notify")
    assert remote.status_code == 400 and "https" in error_of(remote)["message"]

    control.settings(allow_insecure_loopback=False)
    loopback = graph.create(room_events(tenant), receiver.url(paths["notify"]))
    assert loopback.status_code == 400
    assert receiver.requests(paths["notify"]) == []

    control.settings(allow_insecure_loopback=True)
    assert graph.create(room_events(tenant), receiver.url(paths["notify"])).status_code == 201


def test_https_receiver_needs_a_trusted_ca(graph, tenant, paths, control):
    with NotificationReceiver(tls=True) as secure:
        untrusted = graph.create(room_events(tenant), secure.url(paths["notify"]))
        assert untrusted.status_code == 400 and error_of(untrusted)["code"] == "ValidationError"

        control.settings(delivery_ca=secure.ca_path, allow_insecure_loopback=False)
        created = graph.create(room_events(tenant), secure.url(paths["notify"]))

        assert created.status_code == 201, created.text
        assert secure.validations(paths["notify"])[-1].validation_token


# ---- resources, change types and permissions --------------------------------------------------------------

def test_resource_forms_accepted_for_events_and_users(graph, tenant, receiver, paths):
    person = tenant.users[0]
    accepted = [
        (f"/Users/{person.user_principal_name}/Events", "created"),
        (f"users/{person.id}/events", "updated"),
        ("users", "updated,deleted"),
        (f"/users/{person.id}", "updated"),
    ]
    for resource, change_type in accepted:
        response = graph.create(resource, receiver.url(paths["notify"]), change_type=change_type)
        assert response.status_code == 201, (resource, response.text)
        assert response.json()["resource"] == resource


@pytest.mark.parametrize("resource, status, code", [
    ("me/events", 400, "BadRequest"),
    ("users/{room}/calendar/events", 400, "InvalidRequest"),
    ("users/nobody@nowhere.example/events", 404, "ExtensionError"),
    ("users/00000000-0000-0000-0000-000000000000", 404, "Request_ResourceNotFound"),
])
def test_unsupported_or_unknown_resources(graph, tenant, receiver, paths, resource, status, code):
    response = graph.create(resource.format(room=tenant.rooms[0].email), receiver.url(paths["notify"]),
                            change_type="updated")

    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert receiver.requests(paths["notify"]) == []


def test_users_refuse_created(graph, receiver, paths):
    response = graph.create("users", receiver.url(paths["notify"]), change_type="updated,created")

    assert response.status_code == 400
    assert error_of(response)["code"] == "InvalidRequest"
    assert error_of(response)["message"] == "Invalid 'changeType' attribute: 'created'."


def test_unknown_change_type_rejected(graph, tenant, receiver, paths):
    response = graph.create(room_events(tenant), receiver.url(paths["notify"]), change_type="created,moved")

    assert response.status_code == 400 and "'moved'" in error_of(response)["message"]


@pytest.mark.parametrize("roles, resource, code", [
    ({"User.Read.All"}, "users/{room}/events", "ExtensionError"),
    ({"Calendars.Read"}, "users", "Authorization_RequestDenied"),
])
def test_missing_permission_is_403(notification_emulator, control, receiver, paths, roles, resource, code):
    limited = new_tenant(notification_emulator, roles=roles, rooms=1)
    client = SubscriptionClient(limited)

    response = client.create(resource.format(room=limited.rooms[0].email), receiver.url(paths["notify"]),
                             change_type="updated")

    assert response.status_code == 403 and error_of(response)["code"] == code


def test_client_state_limit_and_tls_version(graph, tenant, receiver, paths):
    url = receiver.url(paths["notify"])
    too_long = graph.create(room_events(tenant), url, clientState="x" * 129)
    bad_tls = graph.create(room_events(tenant), url, latestSupportedTlsVersion="v2_0")
    fits = graph.create(room_events(tenant), url, clientState="x" * 128, latestSupportedTlsVersion="v1_3")

    assert too_long.status_code == 400 and "clientState" in error_of(too_long)["message"]
    assert bad_tls.status_code == 400
    assert fits.status_code == 201 and fits.json()["latestSupportedTlsVersion"] == "v1_3"


def test_immutable_id_preference_is_noted(graph, tenant, receiver, paths, control):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]),
                              headers={"Prefer": 'IdType="ImmutableId"'})
    plain = graph.subscribe(f"users/{tenant.users[0].id}/events", receiver.url(paths["notify"]))

    views = {s["id"]: s for s in control.subscriptions(tenant.tenant_id)}
    assert views[created["id"]]["immutableIds"] is True
    assert views[plain["id"]]["immutableIds"] is False


# ---- lifetimes --------------------------------------------------------------------------------------------

def test_short_lifetime_is_raised_to_45_minutes(graph, tenant, receiver, paths, notification_emulator):
    before = notification_emulator.world.clock.now()
    body = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]), minutes=5)
    after = notification_emulator.world.clock.now()

    expires = parse_graph_datetime(body["expirationDateTime"])
    assert before + timedelta(minutes=45) <= expires <= after + timedelta(minutes=45)


def test_event_lifetime_limit_follows_the_live_tenant_and_is_configurable(graph, tenant, receiver, paths, control):
    url = receiver.url(paths["notify"])
    over = graph.create(room_events(tenant), url, minutes=10075)
    within = graph.create(room_events(tenant), url, change_type="updated", minutes=10060)

    assert over.status_code == 400
    assert error_of(over)["code"] == "ExtensionError"
    assert error_of(over)["message"] == "Subscription expiration can only be 10070 minutes in the future."
    assert within.status_code == 201

    control.settings(max_lifetime_minutes_events=10080)
    assert graph.create(room_events(tenant), url, minutes=10075).status_code == 201


def test_user_lifetime_limit(graph, receiver, paths):
    url = receiver.url(paths["notify"])
    over = graph.create("users", url, change_type="updated", minutes=41761)
    within = graph.create("users", url, change_type="updated", minutes=41700)

    assert over.status_code == 400 and "41760 minutes" in error_of(over)["message"]
    assert within.status_code == 201


def test_unparseable_expiry_is_400(graph, tenant, receiver, paths):
    response = graph.create(room_events(tenant), receiver.url(paths["notify"]), expirationDateTime="next week")

    assert response.status_code == 400 and "expirationDateTime" in error_of(response)["message"]


# ---- duplicates and quotas ----------------------------------------------------------------------------

def test_duplicate_combination_is_409_for_the_same_app_only(notification_emulator, graph, tenant, receiver, paths):
    url = receiver.url(paths["notify"])
    first = graph.subscribe(room_events(tenant), url, change_type="updated,created")

    again = graph.create(f"/USERS/{tenant.rooms[0].user_id}/events", url, change_type="created,updated")
    other_types = graph.create(room_events(tenant), url, change_type="deleted")

    assert again.status_code == 409
    assert error_of(again)["message"] == f"Subscription Id {first['id']} already exists for the requested combination"
    assert other_types.status_code == 201

    from devtools.graph_emulator import seed
    second_app = seed.add_app(notification_emulator.world, tenant.tenant)
    other = SubscriptionClient(tenant)
    other.http.headers["Authorization"] = "Bearer " + _token_for(tenant, second_app)
    assert other.create(room_events(tenant), url, change_type="created,updated").status_code == 201


def _token_for(tenant, app) -> str:
    from devtools.graph_emulator.identity import issue_token
    return issue_token(tenant.world, tenant.tenant, app)[0]


def test_quotas_answer_403(graph, tenant, receiver, paths, control):
    control.settings(mailbox_subscription_quota=2, user_subscriptions_per_app=1)
    url = receiver.url(paths["notify"])
    graph.subscribe(room_events(tenant), url, change_type="created")
    graph.subscribe(room_events(tenant), url, change_type="updated")
    graph.subscribe("users", url, change_type="updated")

    mailbox_full = graph.create(room_events(tenant), url, change_type="deleted")
    users_full = graph.create(f"users/{tenant.users[0].id}", url, change_type="updated")

    assert mailbox_full.status_code == 403 and "2" in error_of(mailbox_full)["message"]
    assert users_full.status_code == 403 and "1" in error_of(users_full)["message"]
    assert graph.create(f"users/{tenant.users[0].id}/events", url).status_code == 201


# ---- renew, reauthorize, delete, list ----------------------------------------------------------------------

def test_patch_renews_and_returns_the_full_subscription(graph, tenant, receiver, paths):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]), minutes=60)

    renewed = graph.patch(created["id"], {"expirationDateTime": graph.expiry_in(3000)})

    assert renewed.status_code == 200
    assert DOCUMENTED_FIELDS <= set(renewed.json())
    assert parse_graph_datetime(renewed.json()["expirationDateTime"]) > parse_graph_datetime(created["expirationDateTime"])
    assert graph.get(created["id"]).json()["expirationDateTime"] == renewed.json()["expirationDateTime"]


def test_patch_rules(graph, tenant, receiver, paths):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]),
                              lifecycleNotificationUrl=receiver.url(paths["lifecycle"]))
    sub_id = created["id"]

    too_long = graph.patch(sub_id, {"expirationDateTime": graph.expiry_in(20000)})
    lifecycle = graph.patch(sub_id, {"lifecycleNotificationUrl": receiver.url("/elsewhere")})
    empty = graph.patch(sub_id, {})

    assert too_long.status_code == 400 and "10070" in error_of(too_long)["message"]
    assert lifecycle.status_code == 400
    assert empty.status_code == 400
    assert graph.get(sub_id).json()["expirationDateTime"] == created["expirationDateTime"]


def test_patch_notification_url_is_validated_first(graph, tenant, receiver, paths):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]))
    moved_to = paths["notify"] + "-moved"
    receiver.answer_validation(moved_to + "-broken", mode="wrong")

    refused = graph.patch(created["id"], {"notificationUrl": receiver.url(moved_to + "-broken")})
    moved = graph.patch(created["id"], {"notificationUrl": receiver.url(moved_to)})

    assert refused.status_code == 400
    assert moved.status_code == 200 and moved.json()["notificationUrl"] == receiver.url(moved_to)
    assert len(receiver.validations(moved_to)) == 1


def test_expired_subscription_is_gone(graph, tenant, receiver, paths, control):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]), minutes=45)

    control.advance(46 * 60)
    graph.refresh()

    for response in (graph.get(created["id"]), graph.patch(created["id"], {"expirationDateTime": graph.expiry_in(60)}),
                     graph.reauthorize(created["id"]), graph.delete(created["id"])):
        assert response.status_code == 404
        assert error_of(response)["code"] == "ResourceNotFound"
    assert graph.list_all() == []
    assert control.subscriptions(tenant.tenant_id) == []


def test_delete_and_reauthorize(graph, tenant, receiver, paths):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]))

    reauthorized = graph.reauthorize(created["id"])
    deleted = graph.delete(created["id"])

    assert reauthorized.status_code == 204 and reauthorized.content == b""
    assert deleted.status_code == 204
    assert graph.get(created["id"]).status_code == 404
    assert graph.reauthorize(created["id"]).status_code == 404


def test_reauthorize_needs_the_permission_still_granted(graph, tenant, receiver, paths, notification_emulator):
    created = graph.subscribe(room_events(tenant), receiver.url(paths["notify"]))
    with notification_emulator.world.lock:
        tenant.app.roles.discard("Calendars.ReadWrite")

    assert graph.reauthorize(created["id"]).status_code == 403


def test_list_shows_only_the_calling_apps_subscriptions_in_pages(notification_emulator, graph, tenant, receiver,
                                                                 paths, control):
    control.settings(list_page_size=2)
    url = receiver.url(paths["notify"])
    mine = {graph.subscribe(f"users/{u.id}/events", url)["id"] for u in tenant.users}
    mine.add(graph.subscribe(room_events(tenant), url)["id"])

    from devtools.graph_emulator import seed
    stranger_app = seed.add_app(notification_emulator.world, tenant.tenant)
    stranger = SubscriptionClient(tenant)
    stranger.http.headers["Authorization"] = "Bearer " + _token_for(tenant, stranger_app)
    theirs = stranger.subscribe(room_events(tenant), url)["id"]

    first_page = graph.http.get(graph.base).json()
    listed = graph.list_all()

    assert len(first_page["value"]) == 2 and "@odata.nextLink" in first_page
    assert {s["id"] for s in listed} == mine
    assert graph.get(theirs).status_code == 404
    assert [s["id"] for s in stranger.list_all()] == [theirs]


def test_requests_without_a_valid_token_are_401(graph, receiver, paths, tenant):
    import requests as plain
    response = plain.get(graph.base, verify=tenant.ca_path, timeout=10)

    assert response.status_code == 401
