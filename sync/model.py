"""The domain's records: a connected customer tenant (Integration) and a person synced from its
directory (User). Plain dataclasses with no storage or HTTP knowledge; repositories in
sync/store/ turn them into table rows and the REST API into JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

# Integration.status
ACTIVE = "active"
CREDENTIALS_INVALID = "credentials_invalid"
PAUSED = "paused"
# Marked by DELETE: nothing of it is shown any more, and the purge worker removes it step by step.
DELETING = "deleting"
INTEGRATION_STATUSES = (ACTIVE, CREDENTIALS_INVALID, PAUSED, DELETING)

# How a claimed domain was proven verified in the integration's own tenant (Integration.domain_proofs).
PROOF_ORGANIZATION = "organization"  # listed in GET /organization verifiedDomains
PROOF_UPN = "upn"  # the tenant's own people sign in with it (Entra only allows verified UPN suffixes)

# Integration.mode: what the granted permissions allow (the reference product's two modes).
USERS_AND_CALENDARS = "users_and_calendars"
USERS_ONLY = "users_only"

# User.deactivation_reason
REASON_DISABLED = "disabled"            # accountEnabled false in Entra ID
REASON_REMOVED = "removed"              # deleted (soft or hard) from the directory
REASON_OUT_OF_DOMAIN = "out_of_domain"  # the UPN moved outside the integration's proven domains
REASON_NOT_IN_DIRECTORY = "not_in_directory"  # absent from a full read of the directory
REASON_EMAIL_IN_USE = "email_in_use"  # the address belongs to a person of another integration


# IntegrationOptions.unknown_organizer: what a room meeting organised by someone who is not an
# active person of the integration becomes.
BOOK_AS_GUEST = "guest"  # a reservation with a guest organizer
DECLINE_UNKNOWN = "decline"  # the room copy declined with a comment
UNKNOWN_ORGANIZER_CHOICES = (BOOK_AS_GUEST, DECLINE_UNKNOWN)


@dataclass(frozen=True)
class IntegrationOptions:
    """The customer's choices for their integration. `max_deactivation_share` None means "use the
    app setting"; the room policy options have their defaults here:
    - unknown_organizer: BOOK_AS_GUEST or DECLINE_UNKNOWN;
    - recover_subject: take the subject from the organizer's copy when the room copy shows the
      organizer's name instead (Exchange's default room processing);
    - decline_leaver_meetings: decline, on the room's side, the future Outlook meetings a leaver
      organised on our rooms (their reservations are cancelled either way).
    """

    max_deactivation_share: float | None = None
    unknown_organizer: str = BOOK_AS_GUEST
    recover_subject: bool = True
    decline_leaver_meetings: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"max_deactivation_share": self.max_deactivation_share, "unknown_organizer": self.unknown_organizer,
                "recover_subject": self.recover_subject, "decline_leaver_meetings": self.decline_leaver_meetings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IntegrationOptions":
        """Options as stored or merged: unknown keys are dropped and a missing or null value
        takes its default, so rows written before an option existed read as the default."""
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__ and value is not None}
        return cls(**known)


@dataclass(frozen=True)
class Integration:
    """One customer tenant connected through its own app registration.

    `sealed_secret` is the client secret encrypted with the integration id as associated
    data (sync/secret_box.py); the plaintext never lives on this object.
    """

    id: str
    domains: tuple[str, ...]
    tenant_id: str
    client_id: str
    sealed_secret: str = field(repr=False)
    secret_expires_at: datetime | None
    status: str
    status_reason: str | None
    status_changed_at: datetime
    mode: str
    granted_roles: tuple[str, ...]
    options: IntegrationOptions
    created_at: datetime
    activated_at: datetime | None
    updated_at: datetime
    # Claimed domain -> PROOF_ORGANIZATION / PROOF_UPN; a claimed domain missing here is unproven.
    domain_proofs: dict[str, str] = field(default_factory=dict)
    deletion_requested_at: datetime | None = None
    purged_steps: tuple[str, ...] = ()  # purge steps already finished while deleting
    etag: str | None = field(default=None, compare=False)

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_deleting(self) -> bool:
        return self.status == DELETING

    @property
    def proven_domains(self) -> tuple[str, ...]:
        """The claimed domains proven verified in this tenant: only their people are activated."""
        return tuple(d for d in self.domains if self.domain_proofs.get(d))

    @property
    def unproven_domains(self) -> tuple[str, ...]:
        return tuple(d for d in self.domains if not self.domain_proofs.get(d))

    def with_status(self, status: str, reason: str | None, at: datetime) -> "Integration":
        activated_at = at if status == ACTIVE and self.status != ACTIVE else self.activated_at
        return replace(self, status=status, status_reason=reason, status_changed_at=at,
                       activated_at=activated_at, updated_at=at)


@dataclass(frozen=True)
class User:
    """A person of one integration, as last read from Entra ID, plus whether they may use the
    platform (`active`). `account_enabled` is the directory's flag; `active` is our decision
    (enabled, present and inside the integration's domains)."""

    integration_id: str
    id: str  # the Entra object id
    email: str | None  # lowercase; mail if in a proven domain, else the UPN: what people sign in with here
    mail: str | None
    user_principal_name: str | None
    display_name: str | None
    given_name: str | None
    surname: str | None
    department: str | None
    job_title: str | None
    office_location: str | None
    user_type: str | None
    account_enabled: bool
    active: bool
    deactivated_at: datetime | None
    deactivation_reason: str | None
    created_at: datetime
    updated_at: datetime

    def profile(self) -> tuple:
        """What the directory says about the person: equal profiles mean nothing to write."""
        return (self.email, self.mail, self.user_principal_name, self.display_name, self.given_name, self.surname,
                self.department, self.job_title, self.office_location, self.user_type, self.account_enabled)


def utc_now() -> datetime:
    """The current time, aware and in UTC: the default clock of the services."""
    return datetime.now(timezone.utc)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as the API shows times."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None
