import base64
import json

import pytest

from graph.auth import AppTokenProvider, Credential, StaticTokenProvider, token_roles
from graph.config import GraphConfig
from graph.errors import ConsentMissing


def _jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_credential_repr_shows_no_secret():
    secret = "s3cr3t~value.with-chars"
    credential = Credential(secret)
    for text in (repr(credential), str(credential), repr(AppTokenProvider(GraphConfig(), "t", "c", credential))):
        assert secret not in text
    assert credential.kind == "secret" and len(credential.fingerprint) == 16


def test_fingerprint_changes_with_the_secret_and_not_otherwise():
    assert Credential("a").fingerprint == Credential("a").fingerprint
    assert Credential("a").fingerprint != Credential("b").fingerprint


def test_certificate_credentials():
    credential = Credential({"private_key": "-----BEGIN PRIVATE KEY-----\nabc", "thumbprint": "AB12"})
    assert credential.kind == "certificate" and "BEGIN" not in repr(credential)
    assert credential.for_msal() == {"private_key": "-----BEGIN PRIVATE KEY-----\nabc", "thumbprint": "AB12"}
    with pytest.raises(ValueError):
        Credential({"private_key": "x"})
    with pytest.raises(ValueError):
        Credential("")


def test_roles_are_read_from_the_token_without_verifying_it():
    assert token_roles(_jwt({"roles": ["User.Read.All", "Calendars.ReadWrite"]})) == {
        "User.Read.All", "Calendars.ReadWrite"}
    assert token_roles(_jwt({"scp": "User.Read"})) == frozenset()
    assert token_roles("opaque-token") == frozenset()
    assert token_roles("a.!!!.c") == frozenset()


class _Provider(AppTokenProvider):
    def __init__(self, token):
        super().__init__(GraphConfig(), "tenant", "client", "secret")
        self._fixed = token

    def token(self):
        return self._fixed


def test_require_roles_names_what_is_missing():
    provider = _Provider(_jwt({"roles": ["Directory.Read.All"]}))
    assert provider.require_roles({"User.Read.All", "Directory.Read.All"}) == {"Directory.Read.All"}
    with pytest.raises(ConsentMissing) as caught:
        provider.require_roles({"User.Read.All", "Directory.Read.All"}, {"Calendars.ReadWrite"}, {"Place.Read.All"})
    assert caught.value.missing == {"Calendars.ReadWrite", "Place.Read.All"}
    assert "Calendars.ReadWrite" in str(caught.value) and "admin consent" in str(caught.value)


def test_a_token_without_roles_means_no_consent_at_all():
    with pytest.raises(ConsentMissing) as caught:
        _Provider(_jwt({"aud": "https://graph.microsoft.com"})).require_roles({"User.Read.All"})
    assert "no application permission is granted" in str(caught.value)


def test_static_provider_hides_its_token():
    token = _jwt({"roles": ["A"]})
    provider = StaticTokenProvider(token)
    assert token not in repr(provider) and provider.granted_roles() == {"A"}


def test_config_requires_https_and_derives_the_scope():
    with pytest.raises(ValueError):
        GraphConfig(authority_host="http://localhost:1234")
    assert GraphConfig().scopes == ["https://graph.microsoft.com/.default"]
    assert GraphConfig(api_base="https://graph.microsoft.us/v1.0/").scopes == ["https://graph.microsoft.us/.default"]
    assert GraphConfig(scope="https://graph.microsoft.com/.default",
                       api_base="https://127.0.0.1:9/v1.0").scopes == ["https://graph.microsoft.com/.default"]
