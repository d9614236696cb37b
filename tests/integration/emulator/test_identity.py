"""The emulator's Entra side through real MSAL and requests over HTTPS: client credentials with
secrets (form and Basic), certificates, Entra's documented error bodies, discovery, and how Graph
endpoints treat missing, bad, expired or under-privileged tokens."""
from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import msal
import pytest
import requests

from devtools.graph_emulator import certificates, seed
from tests.support.emulator_fixture import GRAPH_SCOPE, graph_session, new_tenant
# An emulator of this module's own: these tests move the clock.
from tests.support.emulator_modules import emulator, tenant  # noqa: F401 - fixtures


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def post_token(tenant, tenant_name=None, **form) -> requests.Response:
    data = {"grant_type": "client_credentials", "scope": GRAPH_SCOPE, "client_id": tenant.client_id}
    data.update(form)
    url = f"{tenant.base_url}/{tenant_name or tenant.tenant_id}/oauth2/v2.0/token"
    return requests.post(url, data=data, verify=tenant.ca_path, timeout=30)


# ---- secrets through MSAL ----------------------------------------------------------------------------

def test_msal_gets_a_token_with_the_granted_roles_and_then_uses_its_cache(tenant):
    app = tenant.msal_app()
    first = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in first, first
    assert first["token_source"] == "identity_provider"
    assert first["expires_in"] > 300
    claims = claims_of(first["access_token"])
    assert set(claims["roles"]) == {"User.Read.All", "Calendars.ReadWrite", "Place.Read.All"}
    assert claims["tid"] == tenant.tenant_id and claims["appid"] == tenant.client_id
    second = app.acquire_token_for_client([GRAPH_SCOPE])
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]


def test_msal_with_instance_discovery_left_on_and_authority_validation_off(tenant):
    app = msal.ConfidentialClientApplication(
        tenant.client_id, client_credential=tenant.client_secret, authority=tenant.authority,
        validate_authority=False, http_client=graph_session(tenant.ca_path))
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result


def test_msal_accepts_the_tenant_domain_as_authority(tenant):
    app = msal.ConfidentialClientApplication(
        tenant.client_id, client_credential=tenant.client_secret,
        authority=f"{tenant.base_url}/{tenant.domain}", instance_discovery=False,
        http_client=graph_session(tenant.ca_path))
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert claims_of(result["access_token"])["tid"] == tenant.tenant_id


def test_wrong_secret_is_invalid_client_7000215(tenant):
    result = tenant.msal_app(client_credential="not-the-secret").acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    response = post_token(tenant, client_secret="not-the-secret")
    assert response.status_code == 401
    body = response.json()
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    for key in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert body[key]


def test_secret_id_instead_of_value_is_refused(tenant):
    response = post_token(tenant, client_secret=tenant.app.secrets[0].key_id)
    assert response.status_code == 401 and response.json()["error_codes"] == [7000215]


def test_expired_secret_is_7000222(emulator):
    past = emulator.world.clock.now() - timedelta(days=1)
    expired = new_tenant(emulator, secret_expires_at=past)
    result = expired.msal_app().acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000222]


def test_secret_expires_when_the_clock_passes_its_end(emulator):
    soon = emulator.world.clock.now() + timedelta(hours=1)
    tenant = new_tenant(emulator, secret_expires_at=soon)
    assert post_token(tenant, client_secret=tenant.client_secret).status_code == 200
    emulator.world.clock.advance(2 * 3600)
    try:
        response = post_token(tenant, client_secret=tenant.client_secret)
        assert response.status_code == 401 and response.json()["error_codes"] == [7000222]
    finally:
        emulator.world.clock.set(datetime.now(timezone.utc))


def test_unknown_app_is_unauthorized_client_700016(tenant):
    stranger = str(uuid.uuid4())
    response = post_token(tenant, client_id=stranger, client_secret=tenant.client_secret)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client" and body["error_codes"] == [700016]
    assert stranger in body["error_description"]


def test_unknown_tenant_fails_msal_construction_and_the_token_endpoint(tenant):
    missing = str(uuid.uuid4())
    with pytest.raises(ValueError):
        msal.ConfidentialClientApplication(tenant.client_id, client_credential=tenant.client_secret,
                                           authority=f"{tenant.base_url}/{missing}", instance_discovery=False,
                                           http_client=graph_session(tenant.ca_path))
    discovery = requests.get(f"{tenant.base_url}/{missing}/v2.0/.well-known/openid-configuration",
                             verify=tenant.ca_path, timeout=30)
    assert discovery.status_code == 400 and discovery.json()["error_codes"] == [90002]
    response = post_token(tenant, tenant_name=missing, client_secret=tenant.client_secret)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
    assert f"Tenant '{missing}' not found" in body["error_description"]


def test_basic_authentication_is_accepted(tenant):
    credentials = base64.b64encode(f"{tenant.client_id}:{tenant.client_secret}".encode()).decode()
    response = requests.post(tenant.token_url, verify=tenant.ca_path, timeout=30,
                             headers={"Authorization": f"Basic {credentials}"},
                             data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE})
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["appid"] == tenant.client_id


def test_openid_configuration_advertises_https_endpoints(tenant):
    config = requests.get(f"{tenant.authority}/v2.0/.well-known/openid-configuration",
                          verify=tenant.ca_path, timeout=30).json()
    assert config["token_endpoint"] == tenant.token_url
    assert config["authorization_endpoint"].startswith("https://")


# ---- certificates --------------------------------------------------------------------------------------

def test_certificate_credential_through_msal(tenant):
    key_pem, cert_pem, thumbprint = certificates.make_self_signed("roomsync-test")
    certificates.register_certificate(tenant.world, tenant.app, cert_pem)
    app = tenant.msal_app(client_credential={"private_key": key_pem.decode(), "thumbprint": thumbprint})
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["appid"] == tenant.client_id


def test_unregistered_certificate_is_refused_700027(tenant):
    certificates.register_certificate(tenant.world, tenant.app, certificates.make_self_signed()[1])
    key_pem, _, thumbprint = certificates.make_self_signed("not-registered")
    app = tenant.msal_app(client_credential={"private_key": key_pem.decode(), "thumbprint": thumbprint})
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client" and result["error_codes"] == [700027]
    assert thumbprint.upper() in result["error_description"]


def _assertion(key_pem: bytes, thumbprint: str, claims: dict) -> str:
    x5t = base64.urlsafe_b64encode(bytes.fromhex(thumbprint)).rstrip(b"=").decode()
    return jwt.encode(claims, key_pem, algorithm="RS256", headers={"x5t": x5t})


def _assertion_claims(tenant, **overrides) -> dict:
    now = int(tenant.world.clock.now().timestamp())
    claims = {"aud": tenant.token_url, "iss": tenant.client_id, "sub": tenant.client_id,
              "exp": now + 600, "nbf": now, "jti": str(uuid.uuid4())}
    claims.update(overrides)
    return claims


@pytest.mark.parametrize("overrides, code", [
    ({}, None),
    ({"exp": int(time.time()) - 60}, 700024),
    ({"aud": "https://login.example/other/oauth2/v2.0/token"}, 700023),
    ({"iss": "00000000-0000-0000-0000-000000000000"}, 700021),
])
def test_client_assertion_checks(tenant, overrides, code):
    key_pem, cert_pem, thumbprint = certificates.make_self_signed()
    certificates.register_certificate(tenant.world, tenant.app, cert_pem)
    assertion = _assertion(key_pem, thumbprint, _assertion_claims(tenant, **overrides))
    response = post_token(tenant, client_assertion=assertion,
                          client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    if code is None:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401
        assert response.json()["error_codes"] == [code]


def test_assertion_signed_by_another_key_with_a_registered_thumbprint_is_refused(tenant):
    _, cert_pem, thumbprint = certificates.make_self_signed()
    certificates.register_certificate(tenant.world, tenant.app, cert_pem)
    other_key, _, _ = certificates.make_self_signed()
    assertion = _assertion(other_key, thumbprint, _assertion_claims(tenant))
    response = post_token(tenant, client_assertion=assertion,
                          client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    assert response.status_code == 401 and response.json()["error_codes"] == [700027]
    assert "verify the signature failed" in response.json()["error_description"]


# ---- tokens at Graph endpoints -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/users", "/places/microsoft.graph.room"])
def test_graph_refuses_a_missing_or_malformed_token(tenant, path):
    session = graph_session(tenant.ca_path)
    missing = session.get(tenant.api_base + path)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    malformed = session.get(tenant.api_base + path, headers={"Authorization": "Bearer not-a-jwt"})
    assert malformed.status_code == 401
    assert malformed.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_graph_refuses_a_token_from_another_signer(tenant):
    token = tenant.token()
    head, payload, _ = token.split(".")
    forged = f"{head}.{payload}.{base64.urlsafe_b64encode(b'x' * 32).rstrip(b'=').decode()}"
    response = graph_session(tenant.ca_path, forged).get(tenant.api_base + "/users")
    assert response.status_code == 401


def test_graph_refuses_an_expired_token(tenant, emulator):
    session = tenant.session()
    assert session.get(tenant.api_base + "/users").status_code == 200
    emulator.world.clock.advance(3600)
    try:
        response = session.get(tenant.api_base + "/users")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert "expired" in response.json()["error"]["message"]
        assert tenant.session().get(tenant.api_base + "/users").status_code == 200
    finally:
        emulator.world.clock.set(datetime.now(timezone.utc))


def test_missing_permissions_are_403(emulator):
    tenant = new_tenant(emulator, roles={"Calendars.Read"}, rooms=1)
    session = tenant.session()
    users = session.get(tenant.api_base + "/users")
    assert users.status_code == 403
    assert users.json()["error"]["code"] == "Authorization_RequestDenied"
    assert users.json()["error"]["message"] == "Insufficient privileges to complete the operation."
    rooms = session.get(tenant.api_base + "/places/microsoft.graph.room")
    assert rooms.status_code == 403
    assert rooms.json()["error"]["code"] == "ErrorAccessDenied"


def test_revoking_a_role_takes_effect_for_existing_tokens(tenant):
    session = tenant.session()
    assert session.get(tenant.api_base + "/users").status_code == 200
    with tenant.world.lock:
        tenant.app.roles.discard("User.Read.All")
    assert session.get(tenant.api_base + "/users").status_code == 403


def test_directory_read_all_is_enough_for_users(emulator):
    tenant = new_tenant(emulator, roles={"Directory.Read.All"}, users=1)
    assert tenant.session().get(tenant.api_base + "/users").status_code == 200


def test_seeded_tenant_answers_to_its_domain(emulator):
    tenant = seed.create_tenant(emulator.world, f"d{uuid.uuid4().hex[:8]}.example.org")
    assert emulator.world.find_tenant(tenant.domains[0]) is tenant
