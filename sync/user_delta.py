"""Pure planning of a user sync: (directory round, local users, domains) -> what to write.

No I/O here, so every rule can be tested exhaustively. The rules:

- A person is *active* (may use the platform) when the directory lists them, their account is
  enabled and their userPrincipalName is in one of the integration's *proven* domains
  (case-insensitive, exact domain match: `sub.contoso.com` is not `contoso.com`). Only the UPN
  counts: Entra lets a UPN use only a domain verified in that tenant, while `mail` is a free-text
  property any admin of the tenant can set to anyone's address.
- The email a person is known by is their `mail` when it lies in a proven domain, else their UPN
  (also in one); a person outside the proven domains has no email here, so an address outside
  them never becomes anyone's identity. People whose UPN is in a claimed but unproven domain
  are not activated (counted as `skipped_unproven_domain`).
- `@removed`, `accountEnabled: false` or a move out of the domains deactivates a known active
  person; enabled and back in the domains reactivates them. Disabled people seen for the first
  time are stored inactive (no event: they never had access).
- A *full read* (first round, or after the delta link expired) lists everyone; known active
  people missing from it are deactivated.
- The same person can appear several times in one round: entries are merged by id, later
  values winning, `@removed` ending the person until a later entry brings them back.
- The guard refuses a run that would deactivate more than a share of the active people, but
  only once that means at least `MIN_GUARDED_DEACTIVATIONS` people: in a directory of five,
  two leavers are 40% and still an ordinary day.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping

from sync.model import (
    REASON_DISABLED, REASON_EMAIL_IN_USE, REASON_NOT_IN_DIRECTORY, REASON_OUT_OF_DOMAIN, REASON_REMOVED, User,
)

# Graph properties read from /users/delta; accountEnabled must be selected or disabling a user
# is never reported (GRAPH.md §3.2).
SELECT_FIELDS: tuple[str, ...] = (
    "id", "displayName", "mail", "userPrincipalName", "accountEnabled", "department", "jobTitle",
    "givenName", "surname", "officeLocation", "userType",
)

MIN_GUARDED_DEACTIVATIONS = 3

CREATE = "create"
UPDATE = "update"
DEACTIVATE = "deactivate"
REACTIVATE = "reactivate"

EVENT_DEACTIVATED = "user.deactivated"
EVENT_REACTIVATED = "user.reactivated"


class _Missing:
    """A property the directory entry did not carry (partial updates)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# Graph property -> DirectoryEntry attribute.
_PROPERTIES = {
    "userPrincipalName": "user_principal_name", "mail": "mail", "displayName": "display_name",
    "givenName": "given_name", "surname": "surname", "department": "department",
    "jobTitle": "job_title", "officeLocation": "office_location", "userType": "user_type",
    "accountEnabled": "account_enabled",
}


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One person as a delta round reports them; absent properties are MISSING."""

    id: str
    removed: bool = False
    user_principal_name: Any = MISSING
    mail: Any = MISSING
    display_name: Any = MISSING
    given_name: Any = MISSING
    surname: Any = MISSING
    department: Any = MISSING
    job_title: Any = MISSING
    office_location: Any = MISSING
    user_type: Any = MISSING
    account_enabled: Any = MISSING

    def overlaid_with(self, later: "DirectoryEntry") -> "DirectoryEntry":
        """This entry updated by a later one for the same person."""
        if later.removed:
            return later
        if self.removed:
            return later
        changes = {attribute: getattr(later, attribute) for attribute in _PROPERTIES.values()
                   if getattr(later, attribute) is not MISSING}
        return replace(self, **changes)


class MalformedEntry(ValueError):
    """A delta item without a usable id; it is skipped and counted, never guessed at."""


def parse_entry(item: Mapping[str, Any]) -> DirectoryEntry:
    user_id = item.get("id") if isinstance(item, Mapping) else None
    if not isinstance(user_id, str) or not user_id.strip():
        raise MalformedEntry("a directory entry without an id")
    if "@removed" in item:
        return DirectoryEntry(id=user_id, removed=True)
    values: dict[str, Any] = {}
    for name, attribute in _PROPERTIES.items():
        if name not in item:
            continue
        value = item[name]
        if name == "accountEnabled":
            values[attribute] = value if isinstance(value, bool) else MISSING
        else:
            values[attribute] = value.strip() or None if isinstance(value, str) else None
    return DirectoryEntry(id=user_id, **values)


def merge_entries(entries: Iterable[DirectoryEntry], into: dict[str, DirectoryEntry] | None = None
                  ) -> dict[str, DirectoryEntry]:
    """Entries by id, in order of first appearance, later entries overlaid on earlier ones."""
    merged = into if into is not None else {}
    for entry in entries:
        earlier = merged.get(entry.id)
        merged[entry.id] = entry if earlier is None else earlier.overlaid_with(entry)
    return merged


def email_of(mail: str | None, user_principal_name: str | None, domains: frozenset[str]) -> str | None:
    """The address a person is known by here, lowercase: mail when it lies in one of `domains`
    (the proven ones), else the UPN when it does, else none."""
    for address in (mail, user_principal_name):
        if address and domain_of(address) in domains:
            return address.lower()
    return None


def domain_of(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip().lower() or None


def in_domains(user_principal_name: str | None, domains: frozenset[str]) -> bool:
    """Whether the person belongs to the integration: their UPN's domain, never their mail."""
    return domain_of(user_principal_name) in domains


def upn_domains(entries: Iterable["DirectoryEntry"]) -> set[str]:
    """The domains the round's people sign in with: each is verified in the tenant (Entra refuses
    a UPN suffix that is not), so this is the proof used without Organization.Read.All."""
    found: set[str] = set()
    for entry in entries:
        if not entry.removed and isinstance(entry.user_principal_name, str):
            domain = domain_of(entry.user_principal_name)
            if domain:
                found.add(domain)
    return found


def normalise_domains(domains: Iterable[str]) -> frozenset[str]:
    return frozenset(d.strip().lower().rstrip(".") for d in domains if d and d.strip())


@dataclass(frozen=True)
class Action:
    """One person to write. `previous` is the stored record (None when new)."""

    kind: str
    user: User
    previous: User | None

    @property
    def event(self) -> str | None:
        if self.kind == DEACTIVATE:
            return EVENT_DEACTIVATED
        if self.kind == REACTIVATE:
            return EVENT_REACTIVATED
        return None


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    reactivated: int = 0
    unchanged: int = 0
    skipped_out_of_domain: int = 0
    skipped_unproven_domain: int = 0
    refused_email_in_use: int = 0
    malformed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class UserPlan:
    actions: list[Action] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)

    @property
    def deactivations(self) -> int:
        return self.counts.deactivated

    @property
    def active_change(self) -> int:
        """How the number of active people changes when the plan is applied."""
        gained = sum(1 for a in self.actions if a.kind == REACTIVATE or (a.kind == CREATE and a.user.active))
        return gained - self.counts.deactivated


def plan_users(integration_id: str, entries: Mapping[str, DirectoryEntry], local: Mapping[str, User], *,
               domains: Iterable[str], full_read: bool, now: datetime, unproven: Iterable[str] = ()) -> UserPlan:
    """What to write so the local people match the directory round.

    `domains` are the integration's proven domains; `unproven` the claimed ones not (yet) proven,
    only used to count their people apart. `local` holds the stored people the round mentions;
    on a full read it must hold every stored person of the integration (the missing ones are
    deactivated)."""
    allowed = normalise_domains(domains)
    waiting = normalise_domains(unproven) - allowed
    plan = UserPlan()
    for user_id, entry in entries.items():
        _plan_entry(plan, integration_id, entry, local.get(user_id), allowed, now, waiting)
    if full_read:
        for user_id, stored in local.items():
            if user_id not in entries and stored.active:
                _deactivate(plan, stored, stored, REASON_NOT_IN_DIRECTORY, now)
    return plan


def _plan_entry(plan: UserPlan, integration_id: str, entry: DirectoryEntry, stored: User | None,
                allowed: frozenset[str], now: datetime, waiting: frozenset[str] = frozenset()) -> None:
    if entry.removed:
        if stored is not None and stored.active:
            _deactivate(plan, stored, stored, REASON_REMOVED, now)
        else:
            plan.counts.unchanged += 1
        return
    seen = _as_user(integration_id, entry, stored, now, allowed)
    if not in_domains(seen.user_principal_name, allowed):
        if stored is not None and stored.active:
            _deactivate(plan, stored, seen, REASON_OUT_OF_DOMAIN, now)
        elif stored is not None and seen.profile() != stored.profile():
            # Kept inactive, but without the address it may no longer be known by.
            plan.actions.append(Action(UPDATE, replace(seen, active=False, deactivated_at=stored.deactivated_at,
                                                       deactivation_reason=stored.deactivation_reason), stored))
            plan.counts.updated += 1
        elif domain_of(seen.user_principal_name) in waiting:
            plan.counts.skipped_unproven_domain += 1
        else:
            plan.counts.skipped_out_of_domain += 1
        return
    if stored is None:
        user = seen if seen.account_enabled else replace(
            seen, active=False, deactivated_at=now, deactivation_reason=REASON_DISABLED)
        plan.actions.append(Action(CREATE, user, None))
        plan.counts.created += 1
        return
    if seen.account_enabled and not stored.active:
        user = replace(seen, active=True, deactivated_at=None, deactivation_reason=None)
        plan.actions.append(Action(REACTIVATE, user, stored))
        plan.counts.reactivated += 1
        return
    if not seen.account_enabled and stored.active:
        _deactivate(plan, stored, seen, REASON_DISABLED, now)
        return
    if seen.profile() == stored.profile():
        plan.counts.unchanged += 1
        return
    user = replace(seen, active=stored.active, deactivated_at=stored.deactivated_at,
                   deactivation_reason=stored.deactivation_reason)
    plan.actions.append(Action(UPDATE, user, stored))
    plan.counts.updated += 1


def _deactivate(plan: UserPlan, stored: User, seen: User, reason: str, now: datetime) -> None:
    user = replace(seen, active=False, deactivated_at=now, deactivation_reason=reason, updated_at=now)
    plan.actions.append(Action(DEACTIVATE, user, stored))
    plan.counts.deactivated += 1


def _pick(value: Any, fallback: Any) -> Any:
    return fallback if value is MISSING else value


def _as_user(integration_id: str, entry: DirectoryEntry, stored: User | None, now: datetime,
             domains: frozenset[str]) -> User:
    """The person as the directory now describes them; properties the entry lacks keep their
    stored values. Activity fields are filled in by the caller."""
    base = stored
    upn = _pick(entry.user_principal_name, base.user_principal_name if base else None)
    mail = _pick(entry.mail, base.mail if base else None)
    enabled = _pick(entry.account_enabled, base.account_enabled if base else True)
    return User(
        integration_id=integration_id,
        id=entry.id,
        email=email_of(mail, upn, domains),
        mail=mail,
        user_principal_name=upn,
        display_name=_pick(entry.display_name, base.display_name if base else None),
        given_name=_pick(entry.given_name, base.given_name if base else None),
        surname=_pick(entry.surname, base.surname if base else None),
        department=_pick(entry.department, base.department if base else None),
        job_title=_pick(entry.job_title, base.job_title if base else None),
        office_location=_pick(entry.office_location, base.office_location if base else None),
        user_type=_pick(entry.user_type, base.user_type if base else None),
        account_enabled=bool(enabled),
        active=bool(enabled),
        deactivated_at=None,
        deactivation_reason=None,
        created_at=base.created_at if base else now,
        updated_at=now,
    )


# ---- the guard ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuardVerdict:
    tripped: bool
    would_deactivate: int
    active_before: int
    max_share: float

    @property
    def limit(self) -> int:
        """The most deactivations a run may make without being refused."""
        return max(MIN_GUARDED_DEACTIVATIONS - 1, int(self.max_share * self.active_before))

    def explain(self) -> str:
        share = self.would_deactivate / self.active_before if self.active_before else 1.0
        return (f"the run would deactivate {self.would_deactivate} of {self.active_before} active users "
                f"({share:.0%}), more than the allowed {self.max_share:.0%}; nothing was changed. "
                "Check the directory and the app's permissions, then re-run the sync with force=true "
                "to apply it")


def check_guard(deactivations: int, active_before: int, max_share: float) -> GuardVerdict:
    tripped = deactivations >= MIN_GUARDED_DEACTIVATIONS and deactivations > max_share * active_before
    return GuardVerdict(tripped, deactivations, active_before, max_share)


# ---- addresses held by other integrations -------------------------------------------------------

def refuse_emails(plan: UserPlan, refused: frozenset[str], now: datetime) -> UserPlan:
    """The plan with every person whose new address belongs to another integration kept
    inactive and without that address: a clash is refused, never merged."""
    if not refused:
        return plan
    actions: list[Action] = []
    for action in plan.actions:
        user = action.user
        if not user.email or user.email not in refused:
            actions.append(action)
            continue
        plan.counts.refused_email_in_use += 1
        was_active = action.previous.active if action.previous else False
        kept = replace(user, email=None, active=False, deactivation_reason=REASON_EMAIL_IN_USE,
                       deactivated_at=user.deactivated_at if not user.active else now)
        if action.kind == REACTIVATE:
            plan.counts.reactivated -= 1
            plan.counts.updated += 1
        if was_active and action.kind != DEACTIVATE:
            plan.counts.deactivated += 1
            plan.counts.updated -= action.kind == UPDATE
            actions.append(Action(DEACTIVATE, kept, action.previous))
        elif action.kind == DEACTIVATE:
            actions.append(Action(DEACTIVATE, kept, action.previous))
        else:
            actions.append(Action(action.kind if action.kind == CREATE else UPDATE, kept, action.previous))
    plan.actions = actions
    return plan


# ---- email index -------------------------------------------------------------------------------

@dataclass(frozen=True)
class IndexChanges:
    """The email index rows to write (email -> user id) and to delete, one decision per email."""

    owners: dict[str, str]
    released: frozenset[str]


def index_changes(actions: Iterable[Action]) -> IndexChanges:
    owners: dict[str, str] = {}
    released: set[str] = set()
    for action in actions:
        old = action.previous.email if action.previous else None
        new = action.user.email
        if old == new:
            continue
        if old:
            released.add(old)
        if new:
            owners[new] = action.user.id
    return IndexChanges(owners, frozenset(released - owners.keys()))


def apply_plan(local: Mapping[str, User], plan: UserPlan) -> dict[str, User]:
    """`local` after the plan (what the store holds once it is written); for tests and checks."""
    result = dict(local)
    for action in plan.actions:
        result[action.user.id] = action.user
    return result
