"""The directory's users as state: every user mutation goes through here, so that one place keeps
the per-tenant change log that users delta replays and publishes the bus change that users
subscriptions receive (creation and soft delete arrive as `updated`; users subscriptions accept
no `created`).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Iterable

from devtools.graph_emulator.state import Change, Room, Tenant, User, World

# Graph property name -> User attribute, for every property the emulator stores.
USER_PROPERTIES: dict[str, str] = {
    "id": "id",
    "userPrincipalName": "user_principal_name",
    "displayName": "display_name",
    "mail": "mail",
    "givenName": "given_name",
    "surname": "surname",
    "jobTitle": "job_title",
    "department": "department",
    "officeLocation": "office_location",
    "mobilePhone": "mobile_phone",
    "businessPhones": "business_phones",
    "preferredLanguage": "preferred_language",
    "accountEnabled": "account_enabled",
    "userType": "user_type",
}
# Properties a directory update may change (id never changes).
UPDATABLE_PROPERTIES = frozenset(USER_PROPERTIES) - {"id"}


@dataclass(frozen=True)
class LogEntry:
    """One directory change. `properties` None means "the whole object" (created, restored);
    `removed` is "changed" (soft delete) or "deleted" (hard delete) for removals."""
    seq: int
    user_id: str
    properties: frozenset[str] | None = None
    removed: str | None = None


@dataclass
class Directory:
    """Per-tenant directory bookkeeping kept under `tenant.area("directory", Directory)`."""
    # Ids of users that exist and are not soft-deleted, kept sorted: paging is a bisect.
    live_ids: list[str] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    # Delta rounds in progress (server-side skiptoken state), owned by users_delta.
    rounds: dict[str, Any] = field(default_factory=dict)
    # Delta tokens issued before this sequence number are refused (control "expire tokens").
    tokens_valid_from_seq: int = 0

    def record(self, entry: LogEntry) -> None:
        self.log.append(entry)

    def entries_after(self, seq: int) -> list[LogEntry]:
        start = bisect.bisect_right(self.log, seq, key=lambda e: e.seq)
        return self.log[start:]

    def mark_live(self, user_id: str) -> None:
        index = bisect.bisect_left(self.live_ids, user_id)
        if index == len(self.live_ids) or self.live_ids[index] != user_id:
            self.live_ids.insert(index, user_id)

    def mark_gone(self, user_id: str) -> None:
        index = bisect.bisect_left(self.live_ids, user_id)
        if index < len(self.live_ids) and self.live_ids[index] == user_id:
            del self.live_ids[index]


def directory(tenant: Tenant) -> Directory:
    return tenant.area("directory", Directory)


class DirectoryError(ValueError):
    """A directory mutation that the directory refuses (duplicate UPN, unknown user...)."""


# ---- mutations -------------------------------------------------------------------------------

def _publish(world: World, tenant: Tenant, user_id: str, change_type: str) -> None:
    world.bus.publish(Change(tenant_id=tenant.id, kind="users", change_type=change_type, user_id=user_id,
                             item_id=user_id, resource=f"Users/{user_id}", etag=None,
                             odata_type="#Microsoft.Graph.User"))


def _require_user(tenant: Tenant, id_or_upn: str, include_deleted: bool = True) -> User:
    user = tenant.find_user(id_or_upn, include_deleted=include_deleted)
    if user is None:
        raise DirectoryError(f"no user '{id_or_upn}' in tenant {tenant.id}")
    return user


def _check_unique(tenant: Tenant, user: User, upn: str | None, mail: str | None) -> None:
    for other in tenant.users.values():
        if other.id == user.id:
            continue
        if upn and other.user_principal_name.lower() == upn.lower():
            raise DirectoryError(f"userPrincipalName '{upn}' is already used by {other.id}")
        if mail and other.mail and other.mail.lower() == mail.lower():
            raise DirectoryError(f"mail '{mail}' is already used by {other.id}")


def add_user(world: World, tenant: Tenant, user: User, check_unique: bool = True) -> User:
    """Creates a user (a room mailbox too). Delta reports it in full; subscriptions get `updated`."""
    with world.lock:
        if user.id in tenant.users:
            raise DirectoryError(f"user id {user.id} already exists")
        if check_unique:
            _check_unique(tenant, user, user.user_principal_name, user.mail)
        user.seq = world.next_seq()
        tenant.users[user.id] = user
        state = directory(tenant)
        if user.deleted_at is None:
            state.mark_live(user.id)
        state.record(LogEntry(user.seq, user.id))
    _publish(world, tenant, user.id, "updated")
    return user


def add_users_bulk(world: World, tenant: Tenant, users: Iterable[User]) -> int:
    """Adds many new users at once (benchmarks): one sort instead of one insert per user, no
    uniqueness scan, and one bus message per user like single adds."""
    added: list[User] = []
    with world.lock:
        state = directory(tenant)
        for user in users:
            if user.id in tenant.users:
                raise DirectoryError(f"user id {user.id} already exists")
            user.seq = world.next_seq()
            tenant.users[user.id] = user
            state.record(LogEntry(user.seq, user.id))
            added.append(user)
        state.live_ids.extend(u.id for u in added if u.deleted_at is None)
        state.live_ids.sort()
    for user in added:
        _publish(world, tenant, user.id, "updated")
    return len(added)


def update_user(world: World, tenant: Tenant, id_or_upn: str, changes: dict[str, Any]) -> User:
    """Changes Graph properties (camelCase names, e.g. {"displayName": ..., "department": ...}).

    Only properties whose value really changes are logged, so a delta round that did not select
    them sees nothing, as Graph documents.
    """
    unknown = set(changes) - UPDATABLE_PROPERTIES
    if unknown:
        raise DirectoryError(f"cannot update {sorted(unknown)}; updatable: {sorted(UPDATABLE_PROPERTIES)}")
    with world.lock:
        user = _require_user(tenant, id_or_upn, include_deleted=False)
        _check_unique(tenant, user, changes.get("userPrincipalName"), changes.get("mail"))
        changed: set[str] = set()
        for name, value in changes.items():
            attribute = USER_PROPERTIES[name]
            if name == "businessPhones":
                value = list(value or [])
            if getattr(user, attribute) != value:
                setattr(user, attribute, value)
                changed.add(name)
        if not changed:
            return user
        if user.is_room:
            _mirror_room(tenant, user, changed)
        user.seq = world.next_seq()
        directory(tenant).record(LogEntry(user.seq, user.id, frozenset(changed)))
    _publish(world, tenant, user.id, "updated")
    return user


def _mirror_room(tenant: Tenant, user: User, changed: set[str]) -> None:
    """A room's directory name and address are the place's name and address."""
    room = next((r for r in tenant.rooms.values() if r.user_id == user.id), None)
    if room is None:
        return
    if "displayName" in changed:
        room.display_name = user.display_name
    if "mail" in changed and user.mail:
        tenant.rooms.pop(room.email.lower(), None)
        room.email = user.mail
        tenant.rooms[room.email.lower()] = room


def set_account_enabled(world: World, tenant: Tenant, id_or_upn: str, enabled: bool) -> User:
    """Disabling blocks sign-in; the user stays listed (delta shows accountEnabled false only
    when selected)."""
    return update_user(world, tenant, id_or_upn, {"accountEnabled": enabled})


def disable_user(world: World, tenant: Tenant, id_or_upn: str) -> User:
    return set_account_enabled(world, tenant, id_or_upn, False)


def enable_user(world: World, tenant: Tenant, id_or_upn: str) -> User:
    return set_account_enabled(world, tenant, id_or_upn, True)


def soft_delete_user(world: World, tenant: Tenant, id_or_upn: str) -> User:
    """Moves the user to deleted items (restorable for 30 days): gone from /users, delta says
    `@removed: changed`, subscriptions get `updated`."""
    with world.lock:
        user = _require_user(tenant, id_or_upn, include_deleted=False)
        user.deleted_at = world.clock.now()
        user.seq = world.next_seq()
        state = directory(tenant)
        state.mark_gone(user.id)
        state.record(LogEntry(user.seq, user.id, removed="changed"))
    _publish(world, tenant, user.id, "updated")
    return user


def restore_user(world: World, tenant: Tenant, id_or_upn: str) -> User:
    """Restores a soft-deleted user; delta shows it again in full."""
    with world.lock:
        user = _require_user(tenant, id_or_upn)
        if user.deleted_at is None:
            raise DirectoryError(f"user {user.id} is not deleted")
        user.deleted_at = None
        user.seq = world.next_seq()
        state = directory(tenant)
        state.mark_live(user.id)
        state.record(LogEntry(user.seq, user.id))
    _publish(world, tenant, user.id, "updated")
    return user


def hard_delete_user(world: World, tenant: Tenant, id_or_upn: str) -> User:
    """Deletes permanently (also from deleted items): delta says `@removed: deleted`,
    subscriptions get `deleted`. A room mailbox takes its place entry with it."""
    with world.lock:
        user = _require_user(tenant, id_or_upn)
        del tenant.users[user.id]
        for email, room in list(tenant.rooms.items()):
            if room.user_id == user.id:
                del tenant.rooms[email]
        state = directory(tenant)
        state.mark_gone(user.id)
        state.record(LogEntry(world.next_seq(), user.id, removed="deleted"))
    _publish(world, tenant, user.id, "deleted")
    return user


def add_room_mailbox(world: World, tenant: Tenant, user: User, room: Room) -> Room:
    """A room is a user object (is_room) plus its place entry with the same id and address."""
    with world.lock:
        if room.email.lower() in tenant.rooms:
            raise DirectoryError(f"room {room.email} already exists")
        add_user(world, tenant, user)
        tenant.rooms[room.email.lower()] = room
    return room


def expire_delta_tokens(world: World, tenant: Tenant) -> None:
    """Makes every delta and skip token issued so far answer 410 (tenant maintenance)."""
    with world.lock:
        state = directory(tenant)
        state.tokens_valid_from_seq = world.next_seq()
        state.rounds.clear()
