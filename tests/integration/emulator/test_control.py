"""The control API's directory routes: tenants, app registrations and their credentials, people,
rooms and calendar processing, the clock, request counts and delta-token expiry."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from devtools.graph_emulator import certificates
from devtools.graph_emulator.clock import parse_graph_datetime
from tests.support.emulator_fixture import graph_session, post_client_credentials
# An emulator of this module's own: these tests move the clock and reset request counts.
from tests.support.emulator_modules import emulator  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def control(emulator):
    session = graph_session(emulator.ca_path)
    base = f"{emulator.base_url}/_control"

    class Control:
        def __getattr__(self, method):
            def call(path, **kwargs):
                return session.request(method.upper(), base + path, **kwargs)
            return call
    return Control()


@pytest.fixture
def tenant(control):
    response = control.post("/tenants", json={"domain": f"c{uuid.uuid4().hex[:12]}.example"})
    assert response.status_code == 201, response.text
    return response.json()


def token(emulator, tenant_id, client_id, secret):
    return post_client_credentials(emulator.base_url, emulator.ca_path, tenant_id, client_id, secret)


def new_app(control, tenant, **body):
    response = control.post(f"/tenants/{tenant['id']}/apps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def api(emulator, tenant, app):
    access = token(emulator, tenant["id"], app["client_id"], app["secret"]["value"]).json()["access_token"]
    return graph_session(emulator.ca_path, access)


# ---- tenants and apps ----------------------------------------------------------------------------------

def test_create_and_read_a_tenant(control, tenant):
    summary = control.get(f"/tenants/{tenant['domains'][0]}").json()
    assert summary["id"] == tenant["id"] and summary["users"] == 0 and summary["apps"] == []
    assert tenant["id"] in [t["id"] for t in control.get("/tenants").json()["value"]]
    duplicate = control.post("/tenants", json={"domain": tenant["domains"][0]})
    assert duplicate.status_code == 400
    assert control.post("/tenants", json={}).status_code == 400
    assert control.get("/tenants/no-such-tenant").status_code == 404


def test_app_with_secret_gets_tokens_with_its_roles(emulator, control, tenant):
    app = new_app(control, tenant, roles=["User.Read.All"])
    assert app["roles"] == ["User.Read.All"] and app["secret"]["value"]
    session = api(emulator, tenant, app)
    base = emulator.api_base
    assert session.get(f"{base}/users").status_code == 200
    assert session.get(f"{base}/places/microsoft.graph.room").status_code == 403
    roles = control.put(f"/tenants/{tenant['id']}/apps/{app['client_id']}/roles",
                        json={"roles": ["Place.Read.All"]})
    assert roles.json()["roles"] == ["Place.Read.All"]
    assert session.get(f"{base}/users").status_code == 403
    assert session.get(f"{base}/places/microsoft.graph.room").status_code == 200


def test_secrets_can_be_added_expired_and_removed(emulator, control, tenant):
    app = new_app(control, tenant)
    path = f"/tenants/{tenant['id']}/apps/{app['client_id']}/secrets"
    second = control.post(path, json={"expires_in_seconds": 3600}).json()
    first_id = app["secret"]["key_id"]
    assert control.post(f"{path}/{first_id}/expire").json()["expired"] is True
    refused = token(emulator, tenant["id"], app["client_id"], app["secret"]["value"])
    assert refused.status_code == 401 and refused.json()["error_codes"] == [7000222]
    assert token(emulator, tenant["id"], app["client_id"], second["value"]).status_code == 200
    assert control.delete(f"{path}/{second['key_id']}").status_code == 204
    removed = token(emulator, tenant["id"], app["client_id"], second["value"])
    assert removed.json()["error_codes"] == [7000215]
    assert control.delete(f"{path}/{second['key_id']}").status_code == 404


def test_secret_with_explicit_value_and_expiry(emulator, control, tenant):
    app = new_app(control, tenant, secret="my~secret.value", secret_expires_at="2000-01-01T00:00:00Z")
    assert app["secret"]["expired"] is True
    assert token(emulator, tenant["id"], app["client_id"], "my~secret.value").json()["error_codes"] == [7000222]


def test_certificates_can_be_registered_and_removed(emulator, control, tenant):
    app = new_app(control, tenant, with_secret=False)
    assert app["secret"] is None
    _, cert_pem, thumbprint = certificates.make_self_signed()
    path = f"/tenants/{tenant['id']}/apps/{app['client_id']}/certificates"
    added = control.post(path, json={"certificate_pem": cert_pem.decode()})
    assert added.status_code == 201 and added.json()["thumbprint"] == thumbprint
    assert control.get(f"/tenants/{tenant['id']}").json()["apps"][0]["certificates"] == [thumbprint]
    assert control.delete(f"{path}/{thumbprint}").status_code == 204
    assert control.post(path, json={"certificate_pem": "nope"}).status_code == 400


def test_deleted_app_can_no_longer_sign_in(emulator, control, tenant):
    app = new_app(control, tenant)
    assert control.delete(f"/tenants/{tenant['id']}/apps/{app['client_id']}").status_code == 204
    refused = token(emulator, tenant["id"], app["client_id"], app["secret"]["value"])
    assert refused.json()["error_codes"] == [700016]


# ---- people ------------------------------------------------------------------------------------------

def test_add_people_by_count_and_by_list(control, tenant):
    many = control.post(f"/tenants/{tenant['id']}/users", json={"count": 3})
    assert many.status_code == 201 and len(many.json()["value"]) == 3
    listed = control.post(f"/tenants/{tenant['id']}/users", json={"users": [
        {"alias": "ada", "displayName": "Ada Lovelace", "department": "Math", "accountEnabled": False}]})
    ada = listed.json()["value"][0]
    assert ada["userPrincipalName"] == f"ada@{tenant['domains'][0]}" and ada["mail"] == ada["userPrincipalName"]
    assert ada["displayName"] == "Ada Lovelace" and ada["accountEnabled"] is False
    assert control.get(f"/tenants/{tenant['id']}").json()["users"] == 4
    assert control.post(f"/tenants/{tenant['id']}/users", json={"users": [{"shoeSize": 9}]}).status_code == 400
    assert control.post(f"/tenants/{tenant['id']}/users", json={"count": 0}).status_code == 400
    assert control.post(f"/tenants/{tenant['id']}/users", json={"users": [{"alias": "ada"}]}).status_code == 400


def test_update_and_lifecycle_of_a_person(emulator, control, tenant):
    app = new_app(control, tenant)
    graph = api(emulator, tenant, app)
    person = control.post(f"/tenants/{tenant['id']}/users", json={"users": [{"alias": "grace"}]}).json()["value"][0]
    path = f"/tenants/{tenant['id']}/users/{person['id']}"
    domain = tenant["domains"][0]
    renamed = control.patch(path, json={"displayName": "Grace Hopper", "mail": f"ghopper@{domain}",
                                        "userPrincipalName": f"ghopper@{domain}", "department": "Navy"})
    assert renamed.status_code == 200 and renamed.json()["department"] == "Navy"
    assert graph.get(f"{emulator.api_base}/users/ghopper@{domain}").json()["displayName"] == "Grace Hopper"
    assert control.patch(path, json={"shoeSize": 9}).status_code == 400
    assert control.post(f"{path}/disable").json()["accountEnabled"] is False
    assert control.post(f"{path}/enable").json()["accountEnabled"] is True
    assert control.post(f"{path}/soft-delete").json()["deleted"] is True
    assert graph.get(f"{emulator.api_base}/users/{person['id']}").status_code == 404
    assert control.post(f"{path}/soft-delete").status_code == 400
    assert control.post(f"{path}/restore").json()["deleted"] is False
    assert graph.get(f"{emulator.api_base}/users/{person['id']}").status_code == 200
    assert control.post(f"{path}/hard-delete").status_code == 204
    assert control.get(path).status_code == 404
    assert control.post(f"{path}/vanish").status_code == 404


def test_expire_delta_tokens(emulator, control, tenant):
    app = new_app(control, tenant)
    graph = api(emulator, tenant, app)
    delta_link = graph.get(f"{emulator.api_base}/users/delta").json()["@odata.deltaLink"]
    assert graph.get(delta_link).status_code == 200
    assert control.post(f"/tenants/{tenant['id']}/delta/expire").status_code == 204
    gone = graph.get(delta_link)
    assert gone.status_code == 410 and "Location" in gone.headers


# ---- rooms ---------------------------------------------------------------------------------------

def test_rooms_with_settings_and_extras(emulator, control, tenant):
    app = new_app(control, tenant)
    graph = api(emulator, tenant, app)
    created = control.post(f"/tenants/{tenant['id']}/rooms", json={
        "alias": "blue", "displayName": "Blue Room", "capacity": 6, "building": "North", "floorNumber": 1,
        "timeZone": "Europe/Amsterdam", "tags": ["screen"], "settings": {"DeleteSubject": False}})
    assert created.status_code == 201, created.text
    room = created.json()
    assert room["settings"]["delete_subject"] is False and room["settings"]["add_organizer_to_subject"] is True
    assert room["timeZone"] == "Europe/Amsterdam"
    place = graph.get(f"{emulator.api_base}/places/{room['emailAddress']}").json()
    assert place["displayName"] == "Blue Room" and place["tags"] == ["screen"] and place["capacity"] == 6
    user = graph.get(f"{emulator.api_base}/users/{room['emailAddress']}?$select=id,accountEnabled").json()
    user.pop("@odata.context")
    assert user == {"id": room["userId"], "accountEnabled": False}

    path = f"/tenants/{tenant['id']}/rooms/{room['emailAddress']}"
    settings = control.patch(f"{path}/settings", json={"AddOrganizerToSubject": False, "allowConflicts": True,
                                                       "booking_window_in_days": 30})
    assert settings.json()["add_organizer_to_subject"] is False
    assert settings.json()["allow_conflicts"] is True and settings.json()["booking_window_in_days"] == 30
    assert control.patch(f"{path}/settings", json={"AutomateProcessing": "Sometimes"}).status_code == 400
    assert control.patch(f"{path}/settings", json={"Colour": "red"}).status_code == 400

    updated = control.patch(path, json={"displayName": "Azure Room", "capacity": 8, "rotateId": True}).json()
    assert updated["displayName"] == "Azure Room" and updated["id"] != room["id"]
    assert updated["placeId"] == room["placeId"]
    assert graph.get(f"{emulator.api_base}/users/{room['userId']}").json()["displayName"] == "Azure Room"
    hidden = control.patch(path, json={"hiddenFromGal": True})
    assert hidden.status_code == 200
    listed = graph.get(f"{emulator.api_base}/places/microsoft.graph.room").json()["value"]
    assert room["emailAddress"] not in [r["emailAddress"] for r in listed]
    assert control.get(f"/tenants/{tenant['id']}/rooms/nowhere@x.example").status_code == 404
    assert control.post(f"/tenants/{tenant['id']}/rooms", json={"capacity": 3}).status_code == 400


# ---- clock and counts ----------------------------------------------------------------------------

def test_clock_moves_forward_and_can_be_set(emulator, control):
    before = parse_graph_datetime(control.get("/clock").json()["now"])
    moved = parse_graph_datetime(control.post("/clock", json={"advance_seconds": 7200}).json()["now"])
    try:
        assert timedelta(hours=2) <= moved - before < timedelta(hours=2, minutes=1)
        assert emulator.world.clock.now() >= moved
        target = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        now = parse_graph_datetime(control.post("/clock", json={"set": "2030-01-02T03:04:05Z"}).json()["now"])
        assert timedelta(0) <= now - target < timedelta(seconds=5)
        assert control.post("/clock", json={"advance_seconds": -5}).status_code == 400
        assert control.post("/clock", json={"set": "yesterday"}).status_code == 400
        assert control.post("/clock", json={}).status_code == 400
    finally:
        emulator.world.clock.set(datetime.now(timezone.utc))


def test_request_counts_per_endpoint(emulator, control, tenant):
    app = new_app(control, tenant)
    graph = api(emulator, tenant, app)
    assert control.post("/requests/reset").status_code == 204
    for _ in range(3):
        graph.get(f"{emulator.api_base}/users")
    graph.get(f"{emulator.api_base}/users/delta")
    counts = control.get("/requests").json()
    assert counts["counts"]["users.list"] == 3 and counts["counts"]["users.delta"] == 1
    assert "token" not in counts["counts"]


def test_bad_json_is_a_clear_400(control):
    response = control.post("/tenants", data="{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


# ---- the command line --------------------------------------------------------------------------------

def test_command_line_prints_settings_serves_the_demo_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    process = subprocess.Popen([sys.executable, "-m", "devtools.graph_emulator", "--port", "0", "--seed", "demo",
                                "--cert-dir", str(tmp_path)], cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        settings = {}
        while len(settings) < 7:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            key, _, value = line.strip().partition("=")
            settings[key] = value
        assert settings["GRAPH_CA_BUNDLE"].startswith(str(tmp_path))
        access = token_from(settings)
        session = graph_session(settings["GRAPH_CA_BUNDLE"], access)
        people = session.get(f"{settings['GRAPH_API_BASE']}/users?$select=id,accountEnabled").json()["value"]
        assert len(people) == 25 and sum(1 for p in people if not p["accountEnabled"]) == 6  # 1 person, 5 rooms
        rooms = session.get(f"{settings['GRAPH_API_BASE']}/places/microsoft.graph.room").json()["value"]
        assert len(rooms) == 5
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def token_from(settings):
    response = post_client_credentials(settings["GRAPH_AUTHORITY_HOST"], settings["GRAPH_CA_BUNDLE"],
                                       settings["GRAPH_TENANT_ID"], settings["GRAPH_CLIENT_ID"],
                                       settings["GRAPH_CLIENT_SECRET"])
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
