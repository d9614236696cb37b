"""Token acquisition through real MSAL against the emulator's Entra endpoints (HTTPS)."""
import hashlib
import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from graph import users
from graph.auth import Credential, shared_app
from graph.errors import (
    ClientSecretExpired, ConsentMissing, InvalidClientCertificate, InvalidClientSecret, TokenServiceUnavailable,
    UnknownApplication, UnknownTenant,
)
from tests.integration.graph.support import graph_env  # noqa: F401  (module fixture)


def test_a_token_carries_the_granted_roles(graph_env):
    tenant = graph_env.tenant(roles={"User.Read.All", "Calendars.ReadWrite", "Place.Read.All"})
    provider = graph_env.provider(tenant)
    assert provider.granted_roles() == {"User.Read.All", "Calendars.ReadWrite", "Place.Read.All"}
    assert provider.require_roles({"User.Read.All", "Directory.Read.All"}, {"Calendars.ReadWrite"})


def test_tokens_come_from_msal_cache_and_the_app_object_is_shared(graph_env):
    tenant = graph_env.tenant()
    counts = graph_env.server.world.request_counts
    before = counts["token"]
    first = graph_env.provider(tenant)
    second = graph_env.provider(tenant)  # e.g. the next function invocation
    assert first.token() == second.token()
    assert counts["token"] - before == 1
    assert shared_app(first.config, tenant.tenant_id, tenant.client_id, Credential(tenant.client_secret)) \
        is shared_app(second.config, tenant.tenant_id, tenant.client_id, Credential(tenant.client_secret))


def test_a_rotated_secret_builds_a_new_app_object(graph_env):
    tenant = graph_env.tenant()
    config = graph_env.config()
    old = shared_app(config, tenant.tenant_id, tenant.client_id, Credential(tenant.client_secret))
    new_secret = graph_env.control.call(
        "POST", f"/_control/tenants/{tenant.tenant_id}/apps/{tenant.client_id}/secrets", {})["value"]
    rotated = graph_env.provider(tenant, secret=new_secret)
    assert rotated.token()
    assert shared_app(config, tenant.tenant_id, tenant.client_id, Credential(new_secret)) is not old


def test_wrong_secret(graph_env):
    tenant = graph_env.tenant()
    with pytest.raises(InvalidClientSecret) as caught:
        graph_env.provider(tenant, secret="not-the-secret").token()
    assert caught.value.aadsts == 7000215 and "not-the-secret" not in str(caught.value)


def test_a_refused_secret_is_not_kept_in_the_app_cache(graph_env):
    from graph import auth

    tenant = graph_env.tenant()
    provider = graph_env.provider(tenant, secret="another-wrong-secret")
    with pytest.raises(InvalidClientSecret):
        provider.token()
    key = auth._app_key(provider.config, f"{provider.config.authority_host}/{tenant.tenant_id}",
                        tenant.client_id, Credential("another-wrong-secret"))
    assert key not in auth._apps
    assert graph_env.provider(tenant).token()  # the right secret still works afterwards


def test_expired_secret(graph_env):
    tenant = graph_env.tenant()
    secret = graph_env.control.call(
        "POST", f"/_control/tenants/{tenant.tenant_id}/apps/{tenant.client_id}/secrets", {})
    graph_env.control.call(
        "POST", f"/_control/tenants/{tenant.tenant_id}/apps/{tenant.client_id}/secrets/{secret['key_id']}/expire")
    with pytest.raises(ClientSecretExpired) as caught:
        graph_env.provider(tenant, secret=secret["value"]).token()
    assert caught.value.aadsts == 7000222
    assert "create a new client secret" in str(caught.value)


def test_unknown_app(graph_env):
    tenant = graph_env.tenant()
    with pytest.raises(UnknownApplication) as caught:
        graph_env.provider(tenant, client_id=str(uuid.uuid4())).token()
    assert caught.value.aadsts == 700016


def test_unknown_tenant_fails_at_discovery(graph_env):
    tenant = graph_env.tenant()
    with pytest.raises(UnknownTenant) as caught:
        graph_env.provider(tenant, tenant_id="nobody.example.com").token()
    assert caught.value.aadsts == 90002 and "nobody.example.com" in str(caught.value)


def test_token_endpoint_failure_is_unavailable(graph_env):
    tenant = graph_env.tenant()
    graph_env.control.add_fault(method="POST", path=f"/{tenant.tenant_id}/oauth2/v2.0/token", status=503,
                                retry_after=None, count=1)
    with pytest.raises(TokenServiceUnavailable):
        graph_env.provider(tenant).token()


def test_no_consented_permission_is_reported(graph_env):
    tenant = graph_env.tenant(roles=set())
    provider = graph_env.provider(tenant)
    assert provider.granted_roles() == frozenset()
    with pytest.raises(ConsentMissing) as caught:
        provider.require_roles({"User.Read.All"}, {"Calendars.ReadWrite"})
    assert caught.value.missing == {"User.Read.All", "Calendars.ReadWrite"}


def _certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roomsync test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    thumbprint = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_pem, key_pem, thumbprint


def test_certificate_credential(graph_env):
    tenant = graph_env.tenant(users=2)
    cert_pem, key_pem, thumbprint = _certificate()
    graph_env.control.call("POST", f"/_control/tenants/{tenant.tenant_id}/apps/{tenant.client_id}/certificates",
                           {"certificate_pem": cert_pem}, expect=201)
    provider = graph_env.provider(tenant, credential=Credential.certificate(key_pem, thumbprint))
    assert "User.Read.All" in provider.granted_roles()

    _, other_key, other_thumbprint = _certificate()
    with pytest.raises(InvalidClientCertificate) as caught:
        graph_env.provider(tenant, credential=Credential.certificate(other_key, other_thumbprint)).token()
    assert caught.value.aadsts == 700027


def test_an_expired_token_is_refreshed_once_on_401(graph_env):
    tenant = graph_env.tenant(users=2)
    client = graph_env.client(tenant)
    assert client.get(f"/users/{tenant.users[0].id}")["id"] == tenant.users[0].id
    tokens_before = graph_env.server.world.request_counts["token"]
    # MSAL still trusts its cached token; the emulator's clock says it has expired.
    graph_env.server.world.clock.advance(2 * 3600)
    try:
        assert client.get(f"/users/{tenant.users[1].id}")["id"] == tenant.users[1].id
    finally:
        graph_env.server.world.clock.advance(-2 * 3600)
    assert graph_env.server.world.request_counts["token"] - tokens_before == 1


def test_logs_never_show_the_secret_or_the_token(graph_env, caplog):
    tenant = graph_env.tenant(users=5)
    caplog.set_level(logging.DEBUG)  # every logger, msal and urllib3 included
    provider = graph_env.provider(tenant)
    client = graph_env.client(tenant)
    token = provider.token()
    with pytest.raises(InvalidClientSecret):
        graph_env.provider(tenant, secret=tenant.client_secret + "x").token()
    graph_env.control.add_fault(method="GET", path="/v1.0/users$", status=429, retry_after=1, count=1,
                                tenant=tenant.tenant_id)
    listed = list(users.list_users(client, page_size=2))
    round_ = users.delta_round(client, page_size=2)
    users.delta_round(client, round_.delta_link)
    assert len(listed) == 5
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert tenant.client_secret not in text
    assert token not in text and token.split(".")[1] not in text
    assert "Bearer ey" not in text and "Authorization" not in text
    assert any(r.name.startswith("roomsync.graph") for r in caplog.records)
    delta_token = round_.delta_link.split("$deltatoken=", 1)[1].split("&")[0]
    ours = "".join(r.getMessage() for r in caplog.records if r.name.startswith("roomsync.graph"))
    assert delta_token not in ours and "GET /v1.0/users/delta?$deltatoken" in ours
