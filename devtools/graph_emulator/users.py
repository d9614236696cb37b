"""The directory's users: the mutations every other module must go through, `GET /users`,
`GET /users/{id | userPrincipalName}` and `GET /users/delta`.

Mutations keep a per-tenant change log (which Graph properties changed at which sequence
number), so delta rounds can report exactly what Graph documents: changed users with their
current values, `@removed` with reason `changed` (soft delete) or `deleted` (hard delete), and
nothing for changes to properties the round did not `$select`. Each mutation also publishes an
`updated` or `deleted` change for user subscriptions (creation and soft delete arrive as
`updated`; users subscriptions accept no `created`).
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import quote

from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.identity import DIRECTORY_READ, authorize
from devtools.graph_emulator.state import Change, Room, Tenant, User, World, new_guid

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
    # Delta rounds in progress (server-side skiptoken state), see the delta section below.
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



# ---- reading: $select, $filter, rendering ------------------------------------------------------

# GET /users without $select returns these (user-list docs); everything else must be selected.
DEFAULT_SELECT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                  "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
# Real user properties the emulator does not model: selectable, derived or empty.
DERIVED_PROPERTIES = {
    "mailNickname": lambda u: u.user_principal_name.split("@")[0],
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.mail else [],
    "otherMails": lambda u: [],
    "imAddresses": lambda u: [],
    "deletedDateTime": lambda u: None,
    "employeeId": lambda u: None,
    "companyName": lambda u: None,
    "city": lambda u: None,
    "country": lambda u: None,
    "usageLocation": lambda u: None,
    "onPremisesSyncEnabled": lambda u: None,
    "onPremisesImmutableId": lambda u: None,
}
_CANONICAL = {name.lower(): name for name in (*USER_PROPERTIES, *DERIVED_PROPERTIES)}
MAX_PAGE = 999


def parse_select(raw: str | None, canonical: dict[str, str], default: tuple[str, ...], type_name: str) -> tuple[str, ...]:
    """`$select` names (case-insensitive, Graph casing kept), or `default` when absent."""
    if raw is None or not raw.strip():
        return default
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        known = canonical.get(name.lower())
        if known is None:
            raise GraphError(400, "Request_BadRequest",
                             f"Could not find a property named '{name}' on type '{type_name}'.")
        if known not in names:
            names.append(known)
    return tuple(names)


def render_user(user: User, select: Iterable[str], always_id: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": user.id} if always_id else {}
    for name in select:
        if name in USER_PROPERTIES:
            value = getattr(user, USER_PROPERTIES[name])
            body[name] = list(value) if isinstance(value, list) else value
        else:
            body[name] = DERIVED_PROPERTIES[name](user)
    return body


def _context(ctx: Ctx, entity_set: str, select: tuple[str, ...], default: tuple[str, ...], suffix: str = "") -> str:
    shape = "" if select == default else "(" + ",".join(select) + ")"
    return f"{ctx.world.base_url}/v1.0/$metadata#{entity_set}{shape}{suffix}"


def query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{key}={quote(value, safe=',()=$*:')}" for key, value in pairs)


def _arg(ctx: Ctx, name: str) -> str | None:
    """Graph accepts system query options with or without the `$`."""
    args = ctx.request.args
    return args.get(f"${name}", args.get(name))


_STRING_FILTERABLE = {"id", "userPrincipalName", "displayName", "mail", "givenName", "surname", "jobTitle",
                      "department", "officeLocation", "userType", "preferredLanguage", "mobilePhone"}
_CLAUSE_EQ = re.compile(r"^(\w+)\s+(eq|ne)\s+(?:'((?:[^']|'')*)'|(true|false|null))$", re.I)
_CLAUSE_IN = re.compile(r"^(\w+)\s+in\s+\((.*)\)$", re.I)
_CLAUSE_FN = re.compile(r"^(startswith|endswith)\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)$", re.I)


def _split_top(text: str, word: str) -> list[str]:
    """Splits on ` and ` / ` or ` outside quotes and parentheses."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    token = f" {word} "
    lowered = text.lower()
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and lowered.startswith(token, i):
            parts.append(text[start:i])
            i += len(token)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _unsupported(clause: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause specified: '{clause}'.")


def _property(name: str, clause: str) -> str:
    known = _CANONICAL.get(name.lower())
    if known is None or known not in USER_PROPERTIES:
        raise GraphError(400, "Request_BadRequest",
                         f"Property '{name}' does not exist as a declared property or extension property.")
    return known


def _user_value(user: User, name: str) -> Any:
    return getattr(user, USER_PROPERTIES[name])


def _equality_test(name: str, text: str | None, literal: str | None, clause: str) -> Callable[[User], bool]:
    """`accountEnabled eq true|false`, `<string property> eq '...'` (case-insensitive) or `eq null`."""
    if name == "accountEnabled" and literal and literal.lower() in ("true", "false"):
        enabled = literal.lower() == "true"
        return lambda u: u.account_enabled == enabled
    if name in _STRING_FILTERABLE and text is not None:
        wanted = text.replace("''", "'").lower()
        return lambda u: (_user_value(u, name) or "").lower() == wanted
    if name in _STRING_FILTERABLE and literal and literal.lower() == "null":
        return lambda u: _user_value(u, name) is None
    raise _unsupported(clause)


def _compile_clause(clause: str, advanced: bool) -> Callable[[User], bool]:
    while clause.startswith("(") and clause.endswith(")") and _CLAUSE_IN.match(clause) is None:
        clause = clause[1:-1].strip()
    if match := _CLAUSE_EQ.match(clause):
        name, op, text, literal = match.groups()
        name = _property(name, clause)
        if op.lower() == "ne" and not advanced:
            raise _unsupported(clause)
        test = _equality_test(name, text, literal, clause)
        return test if op.lower() == "eq" else (lambda u: not test(u))
    if match := _CLAUSE_IN.match(clause):
        name = _property(match.group(1), clause)
        if name not in _STRING_FILTERABLE:
            raise _unsupported(clause)
        values = {v.lower() for v in re.findall(r"'((?:[^']|'')*)'", match.group(2))}
        return lambda u: (_user_value(u, name) or "").lower() in values
    if match := _CLAUSE_FN.match(clause):
        function, name, text = match.groups()
        name = _property(name, clause)
        if name not in _STRING_FILTERABLE or (function.lower() == "endswith" and not advanced):
            raise _unsupported(clause)
        prefix = text.replace("''", "'").lower()
        if function.lower() == "startswith":
            return lambda u: (_user_value(u, name) or "").lower().startswith(prefix)
        return lambda u: (_user_value(u, name) or "").lower().endswith(prefix)
    raise _unsupported(clause)


def compile_user_filter(text: str | None, advanced: bool = False) -> Callable[[User], bool] | None:
    """The documented simple filters (eq, in, startswith; `and`/`or`), plus `ne` and `endswith`
    for advanced queries (ConsistencyLevel: eventual with $count=true). Anything else is a 400."""
    if text is None or not text.strip():
        return None
    alternatives = []
    for alternative in _split_top(text.strip(), "or"):
        tests = [_compile_clause(clause, advanced) for clause in _split_top(alternative, "and")]
        alternatives.append(tests)
    return lambda u: any(all(t(u) for t in tests) for tests in alternatives)


def _is_advanced(ctx: Ctx) -> bool:
    return (ctx.request.headers.get("ConsistencyLevel", "").lower() == "eventual"
            and (_arg(ctx, "count") or "").lower() == "true")


# ---- GET /users and /users/{id} ------------------------------------------------------------------

_LIST_OPTIONS = {"select", "filter", "top", "skiptoken", "count"}


def _reject_unknown_options(ctx: Ctx, allowed: set[str]) -> None:
    for key in ctx.request.args:
        name = key[1:] if key.startswith("$") else key
        if key.startswith("$") and name.lower() not in allowed:
            raise GraphError(400, "Request_BadRequest", f"'{key}' is not supported by the service.")


def _page_size(ctx: Ctx) -> int:
    raw = _arg(ctx, "top")
    if raw is None:
        return 100
    try:
        size = int(raw)
    except ValueError:
        raise GraphError(400, "Request_BadRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.") from None
    if not 1 <= size <= MAX_PAGE:
        raise GraphError(400, "Request_BadRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.")
    return size


def _encode_token(data: dict[str, Any], key: bytes) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    signature = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{payload}.{signature}"


def _decode_token(token: str, key: bytes) -> dict[str, Any] | None:
    payload, _, signature = token.partition(".")
    expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None


def list_users(ctx: Ctx) -> Response:
    authorize(ctx, DIRECTORY_READ, kind="directory")
    _reject_unknown_options(ctx, _LIST_OPTIONS)
    tenant = ctx.caller.tenant
    select = parse_select(_arg(ctx, "select"), _CANONICAL, DEFAULT_SELECT, "microsoft.graph.user")
    size = _page_size(ctx)
    advanced = _is_advanced(ctx)
    count_wanted = (_arg(ctx, "count") or "").lower() == "true"
    if count_wanted and not advanced:
        raise GraphError(400, "Request_BadRequest",
                         "$count is only supported with the ConsistencyLevel:eventual header.")
    matches = compile_user_filter(_arg(ctx, "filter"), advanced)
    after = None
    if (raw_skip := _arg(ctx, "skiptoken")) is not None:
        state = _decode_token(raw_skip, ctx.world.signing_key)
        if state is None or state.get("t") != tenant.id:
            raise GraphError(400, "Request_BadRequest", "Invalid or expired skip token.")
        after = state["a"]
    with ctx.world.lock:
        ids = directory(tenant).live_ids
        position = 0 if after is None else bisect.bisect_right(ids, after)
        page: list[User] = []
        while position < len(ids) and len(page) < size:
            user = tenant.users[ids[position]]
            position += 1
            if matches is None or matches(user):
                page.append(user)
        more = position < len(ids) and (matches is None or any(
            matches(tenant.users[i]) for i in itertools.islice(ids, position, None)))
        body: dict[str, Any] = {"@odata.context": _context(ctx, "users", select, DEFAULT_SELECT)}
        if count_wanted:
            body["@odata.count"] = sum(1 for i in ids if matches is None or matches(tenant.users[i]))
        body["value"] = [render_user(u, select) for u in page]
    if more and page:
        pairs = [(k, v) for k, v in ctx.request.args.items(multi=True) if k.lstrip("$").lower() != "skiptoken"]
        pairs.append(("$skiptoken", _encode_token({"t": tenant.id, "a": page[-1].id}, ctx.world.signing_key)))
        body["@odata.nextLink"] = f"{ctx.world.base_url}/v1.0/users?{query_string(pairs)}"
    return json_response(body)


def get_user(ctx: Ctx) -> Response:
    authorize(ctx, DIRECTORY_READ, kind="directory")
    _reject_unknown_options(ctx, {"select"})
    tenant = ctx.caller.tenant
    select = parse_select(_arg(ctx, "select"), _CANONICAL, DEFAULT_SELECT, "microsoft.graph.user")
    key = ctx.params["user"]
    with ctx.world.lock:
        user = tenant.find_user(key)
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")
        body = {"@odata.context": _context(ctx, "users", select, DEFAULT_SELECT, "/$entity"),
                **render_user(user, select)}
    return json_response(body)


# ---- GET /users/delta ------------------------------------------------------------------------------

DELTA_TOKEN_LIFETIME = timedelta(days=7)  # directory delta tokens (delta-query-overview)
DELTA_DEFAULT_PAGE = 200
DELTA_MAX_FILTER_IDS = 50
MAX_ROUNDS_KEPT = 256
_DELTA_OPTIONS = {"select", "filter", "deltatoken", "skiptoken"}


@dataclass
class DeltaRound:
    """Server-side state of one delta round being paged: the ids to report (snapshotted once),
    what was selected, and the sequence number the round's deltaLink will continue from."""
    ids: list[str]
    select: tuple[str, ...]
    since_next: int
    started_at: datetime
    filter_ids: tuple[str, ...] | None
    # Page size asked for when the round started; a later Prefer header overrides it.
    page_size: int = DELTA_DEFAULT_PAGE
    # For `Prefer: return=minimal`: the properties that changed per user (None = all selected).
    changed: dict[str, frozenset[str] | None] | None = None


def _resync_required(ctx: Ctx, select: tuple[str, ...] | None) -> GraphError:
    """410 Gone with a Location that restarts a full sync (empty $deltatoken), as documented."""
    query = f"$select={','.join(select)}&" if select else ""
    return GraphError(410, "syncStateNotFound",
                      "The sync state generation is not found. The delta token is expired and data must be "
                      "synchronized again.",
                      headers={"Location": f"{ctx.world.base_url}/v1.0/users/delta?{query}$deltatoken="})


def _delta_filter_ids(raw: str | None) -> tuple[str, ...] | None:
    """User delta only filters by id: `id eq '...'` OR-ed, at most 50 (user-delta docs)."""
    if raw is None or not raw.strip():
        return None
    ids = []
    for clause in _split_top(raw.strip(), "or"):
        match = re.fullmatch(r"\(?\s*id\s+eq\s+'([^']+)'\s*\)?", clause, re.I)
        if not match:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported query filter clause for delta: '{clause}'. Only id eq '...' clauses joined by 'or' are supported.")
        ids.append(match.group(1))
    if len(ids) > DELTA_MAX_FILTER_IDS:
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"Too many ids in the filter: {len(ids)}; at most {DELTA_MAX_FILTER_IDS} are supported.")
    return tuple(ids)


def _delta_page_size(ctx: Ctx) -> tuple[int, bool]:
    raw = ctx.prefer("odata.maxpagesize")
    if raw:
        try:
            return max(1, min(int(raw), MAX_PAGE)), True
        except ValueError:
            pass
    return DELTA_DEFAULT_PAGE, False


def _changes_since(state: Directory, since: int, select: tuple[str, ...],
                   filter_ids: tuple[str, ...] | None) -> tuple[list[str], dict[str, frozenset[str] | None]]:
    """Users to report after `since`: created/restored/removed ones, and those whose changes touch
    a selected property. Ordered by their last change; with the changed properties per user."""
    wanted = set(select)
    only = set(filter_ids) if filter_ids else None
    changed: dict[str, frozenset[str] | None] = {}
    last_seq: dict[str, int] = {}
    for entry in state.entries_after(since):
        if only is not None and entry.user_id not in only:
            continue
        if entry.removed or entry.properties is None:
            changed[entry.user_id] = None
        elif entry.properties & wanted:
            previous = changed.get(entry.user_id, frozenset())
            changed[entry.user_id] = None if previous is None else previous | (entry.properties & wanted)
        else:
            continue
        last_seq[entry.user_id] = entry.seq
    return sorted(last_seq, key=last_seq.__getitem__), changed


def _delta_item(tenant: Tenant, user_id: str, select: tuple[str, ...],
                changed: frozenset[str] | None, minimal: bool) -> dict[str, Any]:
    user = tenant.users.get(user_id)
    if user is None:
        return {"id": user_id, "@removed": {"reason": "deleted"}}
    if user.deleted_at is not None:
        return {"id": user_id, "@removed": {"reason": "changed"}}
    if minimal and changed is not None:
        select = tuple(name for name in select if name in changed)
    return render_user(user, select, always_id=True)


def _start_round(ctx: Ctx, tenant: Tenant, select: tuple[str, ...], filter_ids: tuple[str, ...] | None,
                 since: int | None) -> DeltaRound:
    """Snapshots the ids of a new round once: all live users (initial round) or the changes
    after `since` (a replayed deltaLink)."""
    state = directory(tenant)
    since_next = ctx.world.next_seq()
    if since is None:
        ids = list(state.live_ids) if filter_ids is None else \
            [i for i in dict.fromkeys(filter_ids) if i in tenant.users and tenant.users[i].deleted_at is None]
        return DeltaRound(ids, select, since_next, ctx.world.clock.now(), filter_ids)
    ids, changed = _changes_since(state, since, select, filter_ids)
    return DeltaRound(ids, select, since_next, ctx.world.clock.now(), filter_ids, changed=changed)


def _keep_round(state: Directory, round_: DeltaRound) -> str:
    round_id = new_guid()
    state.rounds[round_id] = round_
    while len(state.rounds) > MAX_ROUNDS_KEPT:
        state.rounds.pop(next(iter(state.rounds)))
    return round_id


def _delta_link(ctx: Ctx, tenant: Tenant, round_: DeltaRound) -> str:
    token = _encode_token({"t": tenant.id, "s": round_.since_next, "i": int(round_.started_at.timestamp()),
                           "sel": list(round_.select), "ids": list(round_.filter_ids or []) or None},
                          ctx.world.signing_key)
    return f"{ctx.world.base_url}/v1.0/users/delta?$deltatoken={token}"


def _serve_page(ctx: Ctx, tenant: Tenant, round_: DeltaRound, round_id: str | None, offset: int) -> Response:
    size, from_header = _delta_page_size(ctx)
    if from_header:
        round_.page_size = size
    else:
        size = round_.page_size
    minimal = (ctx.prefer("return") or "").lower() == "minimal"
    state = directory(tenant)
    page_ids = round_.ids[offset:offset + size]
    changed = round_.changed or {}
    body: dict[str, Any] = {
        "@odata.context": _context(ctx, "users", round_.select, DEFAULT_SELECT),
        "value": [_delta_item(tenant, i, round_.select, changed.get(i), minimal) for i in page_ids],
    }
    if offset + size < len(round_.ids):
        round_id = round_id or _keep_round(state, round_)
        skip = _encode_token({"t": tenant.id, "r": round_id, "o": offset + size}, ctx.world.signing_key)
        body["@odata.nextLink"] = f"{ctx.world.base_url}/v1.0/users/delta?$skiptoken={skip}"
    else:
        body["@odata.deltaLink"] = _delta_link(ctx, tenant, round_)
    headers = {}
    applied = [f"odata.maxpagesize={size}"] if from_header else []
    if minimal:
        applied.append("return=minimal")
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    return json_response(body, headers=headers)


def users_delta(ctx: Ctx) -> Response:
    authorize(ctx, DIRECTORY_READ, kind="directory")
    args = ctx.request.args
    for unsupported in ("top", "orderby", "expand", "skip", "search", "count"):
        if _arg(ctx, unsupported) is not None:
            raise GraphError(400, "Request_BadRequest",
                             f"The query parameter '${unsupported}' is not supported with change tracking over the 'Users' resource.")
    _reject_unknown_options(ctx, _DELTA_OPTIONS)
    tenant = ctx.caller.tenant
    world = ctx.world
    skiptoken, deltatoken = _arg(ctx, "skiptoken"), _arg(ctx, "deltatoken")
    with world.lock:
        state = directory(tenant)
        if skiptoken is not None:
            if _arg(ctx, "select") is not None or _arg(ctx, "filter") is not None:
                raise GraphError(400, "Request_BadRequest",
                                 "$select and $filter are not supported together with $skiptoken; the skip token already carries the query.")
            data = _decode_token(skiptoken, world.signing_key)
            if data is None or data.get("t") != tenant.id:
                raise GraphError(400, "Request_BadRequest", "Badly formed skip token.")
            round_ = state.rounds.get(data["r"])
            if round_ is None or world.clock.now() - round_.started_at >= DELTA_TOKEN_LIFETIME:
                raise _resync_required(ctx, round_.select if round_ else None)
            return _serve_page(ctx, tenant, round_, data["r"], int(data["o"]))
        if deltatoken:
            if deltatoken.lower() == "latest":
                select = parse_select(_arg(ctx, "select"), _CANONICAL, DEFAULT_SELECT, "microsoft.graph.user")
                round_ = DeltaRound([], select, world.next_seq(), world.clock.now(),
                                    _delta_filter_ids(_arg(ctx, "filter")))
                return _serve_page(ctx, tenant, round_, None, 0)
            data = _decode_token(deltatoken, world.signing_key)
            if data is None or data.get("t") != tenant.id:
                raise GraphError(400, "Request_BadRequest", "Badly formed delta token.")
            select = tuple(data["sel"])
            issued = datetime.fromtimestamp(data["i"], tz=timezone.utc)
            if world.clock.now() - issued >= DELTA_TOKEN_LIFETIME or data["s"] < state.tokens_valid_from_seq:
                raise _resync_required(ctx, select)
            round_ = _start_round(ctx, tenant, select, tuple(data["ids"]) if data.get("ids") else None, data["s"])
            return _serve_page(ctx, tenant, round_, None, 0)
        select = parse_select(_arg(ctx, "select"), _CANONICAL, DEFAULT_SELECT, "microsoft.graph.user")
        round_ = _start_round(ctx, tenant, select, _delta_filter_ids(_arg(ctx, "filter")), None)
        return _serve_page(ctx, tenant, round_, None, 0)


def expire_delta_tokens(world: World, tenant: Tenant) -> None:
    """Makes every delta and skip token issued so far answer 410 (tenant maintenance)."""
    with world.lock:
        state = directory(tenant)
        state.tokens_valid_from_seq = world.next_seq()
        state.rounds.clear()


def register(app: EmulatorApp) -> None:
    app.route("/v1.0/users", ["GET"], list_users, name="users.list")
    app.route("/v1.0/users/delta", ["GET"], users_delta, name="users.delta")
    app.route("/v1.0/users/<user>", ["GET"], get_user, name="users.get")
