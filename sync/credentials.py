"""An integration's way into its tenant: trying credentials before they are stored, building the
Graph client for a sync run from the sealed secret, and telling credential problems an admin
must fix (park the integration) from passing trouble (try again later).

The reference product asks each customer for its own app registration (tenant id, client id,
client secret). Directory access (User.Read.All or a broader directory role) is required;
Calendars.ReadWrite is optional and its absence means "users only".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graph import (
    AppTokenProvider, ApplicationDisabled, ClientSecretExpired, ConsentMissing, Forbidden, GraphClient,
    GraphConfig, InvalidClientCertificate, InvalidClientSecret, TokenError, TokenServiceUnavailable,
    UnknownApplication, UnknownTenant, token_roles,
)
from sync.model import CREDENTIALS_INVALID, USERS_AND_CALENDARS, USERS_ONLY, Integration, iso_utc
from sync.secret_box import SecretBinding, SecretBox, SecretUnreadable
from sync.settings import Settings
from sync.store.errors import ConflictError
from sync.store.integrations_repo import IntegrationsRepo

log = logging.getLogger(__name__)

USER_READ = "User.Read.All"
# Any of these lets the app read users; User.Read.All is the least privilege and what we ask for.
DIRECTORY_READ_ROLES = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
                                  "Directory.ReadWrite.All"})
CALENDARS_READ_WRITE = "Calendars.ReadWrite"

# Token errors that only an admin can fix: retrying with the same credentials cannot help.
PERMANENT_TOKEN_ERRORS = (InvalidClientSecret, ClientSecretExpired, InvalidClientCertificate,
                          UnknownApplication, UnknownTenant, ConsentMissing, ApplicationDisabled)

# Days before a secret's expiry at which its integration shows a warning (RELIABILITY.md §4.4).
EXPIRY_WARNING_DAYS = (30, 14, 7)


def graph_config(settings: Settings) -> GraphConfig:
    return GraphConfig(authority_host=settings.graph_authority_host, api_base=settings.graph_api_base,
                       ca_bundle=settings.graph_ca_bundle)


@dataclass(frozen=True)
class GrantedAccess:
    roles: frozenset[str]

    @property
    def mode(self) -> str:
        return USERS_AND_CALENDARS if CALENDARS_READ_WRITE in self.roles else USERS_ONLY


class PermissionMissing(Exception):
    """The app registration works but lacks a permission the integration needs."""

    def __init__(self, missing: list[str], granted: frozenset[str]) -> None:
        self.missing = missing
        self.granted = granted
        names = ", ".join(missing)
        super().__init__(f"the app registration lacks the application permission {names} (with admin consent); "
                         f"add it under API permissions, grant admin consent, then try again")


# The operator alarm an integration's status shows while its stored secret cannot be opened.
SECRET_UNREADABLE = "secret_unreadable"


def binding_of(integration_id: str, tenant_id: str, client_id: str) -> SecretBinding:
    return SecretBinding(integration_id=integration_id, tenant_id=tenant_id, client_id=client_id)


class GraphAccess:
    """Builds what a sync run needs to call Graph for an integration."""

    def __init__(self, config: GraphConfig, secret_box: SecretBox) -> None:
        self.config = config
        self._box = secret_box

    def __repr__(self) -> str:
        return f"GraphAccess(api_base={self.config.api_base!r})"

    def check(self, tenant_id: str, client_id: str, client_secret: str) -> GrantedAccess:
        """Fetches a token with the credentials and reads the permissions it grants.

        Raises the graph TokenError subclasses (typed, with an admin hint) or PermissionMissing."""
        provider = AppTokenProvider(self.config, tenant_id, client_id, client_secret)
        roles = token_roles(provider.token())
        if not roles & DIRECTORY_READ_ROLES:
            raise PermissionMissing([USER_READ], roles)
        return GrantedAccess(roles)

    def seal(self, client_secret: str, integration_id: str, *, tenant_id: str, client_id: str) -> str:
        """The secret sealed with the current key, bound to the integration, tenant and app."""
        return self._box.seal(client_secret, binding_of(integration_id, tenant_id, client_id))

    def open_secret(self, integration: Integration) -> str:
        """The plaintext secret; SecretUnreadable (an operator's problem) when no key opens it."""
        return self._box.open(integration.sealed_secret,
                              binding_of(integration.id, integration.tenant_id, integration.client_id))

    def operator_alarm(self, integration: Integration) -> str | None:
        """`secret_unreadable` while no configured key opens the integration's secret, else None."""
        try:
            self.open_secret(integration)
        except SecretUnreadable as error:
            log.error("integration %s: %s", integration.id, error)
            return SECRET_UNREADABLE
        return None

    def client_for(self, integration: Integration) -> GraphClient:
        """A Graph client for one run (close it when done); tokens come from the process-wide
        MSAL app of this tenant, app and secret.

        Raises SecretUnreadable when the stored secret cannot be opened: the key configuration
        is wrong (SECRET_ENCRYPTION_OLD_KEYS lacks the key that sealed it) or the row was altered,
        which the operator must fix; it is not a credentials problem of the customer."""
        provider = AppTokenProvider(self.config, integration.tenant_id, integration.client_id,
                                    self.open_secret(integration))
        return GraphClient(self.config, provider)


def is_credentials_problem(error: BaseException) -> bool:
    """True for failures an admin must fix in the app registration or the integration."""
    if isinstance(error, SecretUnreadable):
        return False  # the operator's key configuration, not the customer's app registration
    if isinstance(error, PermissionMissing):
        return True
    if isinstance(error, TokenServiceUnavailable):
        return False
    if isinstance(error, PERMANENT_TOKEN_ERRORS):
        return True
    # Graph refusing the directory read means the permission was revoked after onboarding.
    return isinstance(error, Forbidden)


def operator_alarm_of(error: BaseException) -> str | None:
    """The operator alarm a run's failure raises, if any (`secret_unreadable`)."""
    return SECRET_UNREADABLE if isinstance(error, SecretUnreadable) else None


def credentials_reason(error: BaseException) -> str:
    """The one-line reason shown in the integration's status (never carries a secret)."""
    if isinstance(error, Forbidden):
        return (f"Graph refused to read the directory ({error.code}): the app registration no longer has "
                f"{USER_READ} with admin consent; grant it again")
    return str(error)


def token_error_code(error: TokenError) -> str:
    """A stable machine-readable name for the API's error body."""
    for kind, code in ((UnknownTenant, "unknown_tenant"), (UnknownApplication, "unknown_application"),
                       (ClientSecretExpired, "client_secret_expired"), (InvalidClientSecret, "invalid_client_secret"),
                       (InvalidClientCertificate, "invalid_client_certificate"),
                       (ApplicationDisabled, "application_disabled"), (ConsentMissing, "consent_missing"),
                       (TokenServiceUnavailable, "entra_unavailable")):
        if isinstance(error, kind):
            return code
    return "token_refused"


def park_integration(integrations: IntegrationsRepo, integration_id: str, reason: str, now: datetime, *,
                     unless_changed_after: datetime | None = None) -> bool:
    """Marks the integration credentials_invalid with the reason, so its work is skipped until an
    admin replaces the secret; True when it did.

    ETag-guarded. An integration changed after `unless_changed_after` (the failing run's start:
    say, an admin saved a new secret meanwhile) is left alone, since the failure was about the
    credentials it had before."""
    for _ in range(3):
        integration = integrations.get(integration_id)
        if integration is None:
            return False
        if unless_changed_after is not None and integration.updated_at > unless_changed_after:
            return False
        if integration.status == CREDENTIALS_INVALID and integration.status_reason == reason:
            return True
        try:
            integrations.update(integration.with_status(CREDENTIALS_INVALID, reason, now))
            return True
        except ConflictError:
            continue
    return False


def secret_expiry_warnings(expires_at: datetime | None, now: datetime) -> list[dict[str, Any]]:
    """A warning once the secret is within 30, 14 or 7 days of expiry (the tightest threshold
    reached), or has expired."""
    if expires_at is None:
        return []
    left = expires_at - now
    if left.total_seconds() <= 0:
        return [{"code": "client_secret_expired", "expires_at": iso_utc(expires_at),
                 "message": "the client secret has expired; create a new one and update the integration"}]
    days_left = left.days
    reached = [days for days in EXPIRY_WARNING_DAYS if left.total_seconds() <= days * 86400]
    if not reached:
        return []
    threshold = min(reached)
    return [{"code": "client_secret_expiring", "threshold_days": threshold, "days_left": days_left,
             "expires_at": iso_utc(expires_at),
             "message": f"the client secret expires within {threshold} days ({expires_at.date().isoformat()}); "
                        "create a new secret and update the integration before then"}]
