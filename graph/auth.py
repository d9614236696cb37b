"""App-only tokens for Graph from Entra ID (OAuth 2.0 client credentials) through MSAL.

https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow

MSAL keeps its token cache on the application object, so one object is kept per authority,
client id and credential and reused across invocations; a rotated credential gets a new object
(the key holds a fingerprint of the credential, never the credential itself).
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from typing import Iterable, Mapping, Protocol

import msal
import requests

from graph.config import GraphConfig
from graph.errors import (
    ConsentMissing, TokenError, TokenServiceUnavailable, UnknownTenant, token_error_from_result,
)
from graph.http import GraphSession

log = logging.getLogger("roomsync.graph.auth")


class TokenSource(Protocol):
    """What GraphClient needs: a current token, and a way to drop one Graph rejected."""

    def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class Credential:
    """A client secret, or a certificate (`{"private_key": pem, "thumbprint": sha1 hex}`).

    Its repr shows only the kind and a short fingerprint, so it is safe in logs and tracebacks."""

    __slots__ = ("_value", "kind", "fingerprint")

    def __init__(self, value: str | Mapping[str, str]) -> None:
        if isinstance(value, str):
            if not value:
                raise ValueError("empty client secret")
            self._value: str | dict[str, str] = value
            self.kind = "secret"
            material = value.encode("utf-8")
        elif isinstance(value, Mapping) and value.get("private_key") and value.get("thumbprint"):
            self._value = {"private_key": value["private_key"], "thumbprint": value["thumbprint"]}
            self.kind = "certificate"
            material = (value["thumbprint"] + "\n" + value["private_key"]).encode("utf-8")
        else:
            raise ValueError("a credential is a client secret string or "
                             "{'private_key': pem, 'thumbprint': sha1 hex}")
        self.fingerprint = hashlib.sha256(b"roomsync-credential\0" + material).hexdigest()[:16]

    @classmethod
    def certificate(cls, private_key_pem: str, thumbprint: str) -> "Credential":
        return cls({"private_key": private_key_pem, "thumbprint": thumbprint})

    def for_msal(self) -> str | dict[str, str]:
        return self._value

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__


def token_roles(access_token: str) -> frozenset[str]:
    """The `roles` claim (granted application permissions) of a JWT access token.

    The signature is not checked: this client is not the token's audience (Graph is) and only
    reads the claim to tell an admin which permissions are granted."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return frozenset()
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return frozenset()
    roles = claims.get("roles") if isinstance(claims, dict) else None
    if not isinstance(roles, list):
        return frozenset()
    return frozenset(r for r in roles if isinstance(r, str))


# ---- the shared MSAL application objects -------------------------------------------------------

_apps_lock = threading.Lock()
_apps: dict[tuple, msal.ConfidentialClientApplication] = {}
_building: dict[tuple, threading.Lock] = {}


def _authority(config: GraphConfig, tenant_id: str) -> str:
    return f"{config.authority_host}/{tenant_id}"


def _app_key(config: GraphConfig, authority: str, client_id: str, credential: Credential) -> tuple:
    return (authority.lower(), client_id.lower(), credential.fingerprint, config.ca_bundle, config.timeout)


def _build_app(config: GraphConfig, authority: str, client_id: str,
               credential: Credential) -> msal.ConfidentialClientApplication:
    """Constructs the MSAL app; this already fetches the tenant's OpenID configuration.

    `instance_discovery=False`: MSAL would otherwise ask login.microsoftonline.com to vouch for
    any authority host it does not know (national clouds listed by us, private or emulated
    hosts), which fails for hosts it has never heard of and calls the public cloud from
    deployments that must not. We only ever use authority hosts from our own configuration,
    so there is nothing to validate."""
    try:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential.for_msal(),
            authority=authority,
            http_client=GraphSession(config),
            instance_discovery=False,
            timeout=config.timeout,
        )
    except ValueError as exc:
        if "authority configuration" in str(exc) or "tenant" in str(exc).lower():
            raise UnknownTenant(f"tenant {authority.rsplit('/', 1)[-1]!r} was not found at "
                                f"{config.authority_host}", aadsts=90002) from None
        raise TokenError(f"the credential or authority is not usable: {type(exc).__name__}") from None
    except (requests.RequestException, msal.exceptions.MsalServiceError) as exc:
        raise TokenServiceUnavailable(f"OpenID discovery at {config.authority_host} failed: "
                                      f"{type(exc).__name__}") from None


def shared_app(config: GraphConfig, tenant_id: str, client_id: str,
               credential: Credential) -> msal.ConfidentialClientApplication:
    """The process-wide MSAL app for this authority, client id and credential."""
    authority = _authority(config, tenant_id)
    key = _app_key(config, authority, client_id, credential)
    with _apps_lock:
        app = _apps.get(key)
        if app is not None:
            return app
        building = _building.setdefault(key, threading.Lock())
    # Construction does network I/O: serialise it per key only, never under the global lock.
    with building:
        with _apps_lock:
            app = _apps.get(key)
        if app is None:
            app = _build_app(config, authority, client_id, credential)
            with _apps_lock:
                # A rotated credential replaces the old object for the same authority and app.
                for old in [k for k in _apps if k[:2] == key[:2] and k != key]:
                    del _apps[old]
                _apps[key] = app
                _building.pop(key, None)
        return app


def forget_shared_app(config: GraphConfig, tenant_id: str, client_id: str, credential: Credential) -> None:
    """Drops one cached app, so a credential Entra refused is not kept in memory."""
    key = _app_key(config, _authority(config, tenant_id), client_id, credential)
    with _apps_lock:
        _apps.pop(key, None)


def forget_shared_apps() -> None:
    """Drops every cached MSAL app (tests; a process normally keeps them for its lifetime)."""
    with _apps_lock:
        _apps.clear()


class AppTokenProvider:
    """Tokens for one tenant and app registration, with typed errors an admin can act on."""

    def __init__(self, config: GraphConfig, tenant_id: str, client_id: str,
                 credential: Credential | str | Mapping[str, str]) -> None:
        self.config = config
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential if isinstance(credential, Credential) else Credential(credential)

    def __repr__(self) -> str:
        return (f"AppTokenProvider(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
                f"credential={self._credential!r})")

    def _app(self) -> msal.ConfidentialClientApplication:
        return shared_app(self.config, self.tenant_id, self.client_id, self._credential)

    def token(self) -> str:
        """A valid access token (from MSAL's cache while it has more than 5 minutes left)."""
        app = self._app()
        try:
            result = app.acquire_token_for_client(self.config.scopes)
        except msal.exceptions.MsalServiceError as exc:
            reason = str(exc.args[0])[:80] if exc.args else "HTTP error"
            raise TokenServiceUnavailable(f"the token endpoint failed ({reason})") from None
        except requests.RequestException as exc:
            raise TokenServiceUnavailable(f"the token endpoint could not be reached: {type(exc).__name__}") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            log.debug("token for tenant %s app %s from %s", self.tenant_id, self.client_id,
                      result.get("token_source", "identity_provider"))
            return token
        error = token_error_from_result(result if isinstance(result, dict) else {})
        if not isinstance(error, TokenServiceUnavailable):
            forget_shared_app(self.config, self.tenant_id, self.client_id, self._credential)
        log.warning("token request refused for tenant %s app %s: %s %s", self.tenant_id,
                    self.client_id, type(error).__name__, error.aadsts or "")
        raise error

    def invalidate(self, token: str) -> None:
        """Removes a token Graph rejected from MSAL's cache, so the next `token()` asks Entra.

        MSAL never refreshes a cached client-credentials token early (`force_refresh` is refused
        for this flow), so the rejected entry itself must go."""
        cache = self._app().token_cache
        entries = list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                    target=self.config.scopes, query={"client_id": self.client_id}))
        for entry in entries:
            if entry.get("secret") == token:
                cache.remove_at(entry)

    def granted_roles(self) -> frozenset[str]:
        """Application permissions admin-consented for this app, read from a token."""
        return token_roles(self.token())

    def require_roles(self, *requirements: Iterable[str]) -> frozenset[str]:
        """Checks that each requirement (a set of acceptable alternatives, e.g.
        {"Calendars.ReadWrite"} or {"User.Read.All", "Directory.Read.All"}) is granted.

        Returns the granted roles; raises ConsentMissing naming what is missing (a token with
        no roles at all means no application permission has admin consent)."""
        granted = self.granted_roles()
        missing = [sorted(alternatives) for alternatives in map(set, requirements)
                   if alternatives and not alternatives & granted]
        if missing:
            names = frozenset(alternatives[0] for alternatives in missing)
            readable = ", ".join(" or ".join(alternatives) for alternatives in missing)
            what = "no application permission is granted" if not granted else f"missing {readable}"
            raise ConsentMissing(f"{what} for app {self.client_id}; needed: {readable}", missing=names)
        return granted


class StaticTokenProvider:
    """A fixed token (tests, or a token obtained elsewhere). `invalidate` has nothing to refresh."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenProvider(<token hidden>)"

    def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        return None

    def granted_roles(self) -> frozenset[str]:
        return token_roles(self._token)
