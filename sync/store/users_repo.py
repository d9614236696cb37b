"""The `users` table: the people of each integration, kept in one partition per integration so
everything a sync run writes about one person commits in one entity-group transaction.

Rows of partition `<integration id>` (keys built with sync.store.keys.compose, separator "!"):

| RowKey | row |
|---|---|
| `u!<encode_id(Entra object id)>` | the person (profile, account_enabled, active, deactivation) |
| `e!<encode_id(lowercase email)>` | email index: `UserId` of the person signing in with it, `Holders` others still stored with it |
| `m!summary` | `ActiveUsers` / `Users`: kept exact in the same transactions as the rows |
| `o!<event id>` | outbox: a user event committed with its change, deleted once on the queue |

Graph ids and emails are url-safe base64 encoded (reversible, key-safe); a person's rows are
never split across transactions, so a crash leaves either the old or the new state of each
person, with an index and counters that agree with it.

An address can pass from one person to another across runs in either order: Ann takes Bob's
address in one run while Bob's rename only arrives in a later one, so for a while two stored
people hold it. The row then names the newest holder and lists the earlier ones in `Holders`.
A release is written against the row as read (its ETag): by someone the row does not name, it
changes nothing; by the one it names, the row passes to a listed holder who still has the
address, and is deleted only when nobody does. So every stored address keeps one row naming a
person who holds it.
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sync.model import User
from sync.store.batch import MAX_OPERATIONS
from sync.store.catalog import Store
from sync.store.errors import ConflictError, TransactionError
from sync.store.keys import compose, decode_id, encode_id, prefix_range, split
from sync.store.tables import MAX_PAGE_SIZE, MERGE, REPLACE, etag_of, utc_moment
from sync.user_delta import Action, IndexChanges

TABLE = "users"
USER = "u"
EMAIL = "e"
OUTBOX = "o"
SUMMARY_ROW = compose("m", "summary")

# Azure Tables allows at most 15 comparisons in one filter: the partition plus 14 row keys.
ROW_KEYS_PER_QUERY = 14
# Above this many people to look up, one scan of the partition is cheaper than point queries.
SCAN_THRESHOLD = 1400


def user_row_key(user_id: str) -> str:
    return compose(USER, encode_id(user_id))


def email_row_key(email: str) -> str:
    return compose(EMAIL, encode_id(email.lower()))


@dataclass(frozen=True)
class Summary:
    active: int = 0
    total: int = 0


@dataclass(frozen=True)
class PendingEvent:
    """A user event committed in the outbox and not yet confirmed on the queue."""

    event_id: str
    type: str
    integration_id: str
    user_id: str
    at: datetime


@dataclass(frozen=True)
class ApplyResult:
    transactions: int
    events: list[PendingEvent]
    summary: Summary


class UsersRepo:
    def __init__(self, store: Store, *, new_id=lambda: uuid.uuid4().hex) -> None:
        self._store = store
        self._new_id = new_id

    @property
    def table(self):
        return self._store.table(TABLE)

    # ---- reading ----------------------------------------------------------------------------

    def get(self, integration_id: str, user_id: str) -> User | None:
        row = self.table.get(integration_id, user_row_key(user_id))
        return from_entity(row) if row is not None else None

    def get_by_email(self, integration_id: str, email: str) -> User | None:
        index = self.table.get(integration_id, email_row_key(email))
        return self.get(integration_id, index["UserId"]) if index is not None else None

    def index_rows(self, integration_id: str, emails: Iterable[str]) -> dict[str, "IndexRow"]:
        """The index rows that exist among `emails`, by email."""
        wanted = list(dict.fromkeys(e.lower() for e in emails))
        found: dict[str, IndexRow] = {}
        for start in range(0, len(wanted), ROW_KEYS_PER_QUERY):
            chunk = wanted[start:start + ROW_KEYS_PER_QUERY]
            parameters = {f"k{n}": email_row_key(email) for n, email in enumerate(chunk)}
            query = " or ".join(f"RowKey eq @k{n}" for n in range(len(chunk)))
            for row in self.table.query(query, parameters, partition=integration_id):
                found[decode_id(split(row["RowKey"])[1])] = IndexRow(
                    row["UserId"], tuple(json.loads(row.get("Holders") or "[]")), etag_of(row))
        return found

    def get_many(self, integration_id: str, user_ids: Iterable[str]) -> dict[str, User]:
        """The stored people among `user_ids` (missing ones are simply absent)."""
        wanted = list(dict.fromkeys(user_ids))
        if len(wanted) > SCAN_THRESHOLD:
            chosen = set(wanted)
            return {u.id: u for u in self.all(integration_id) if u.id in chosen}
        found: dict[str, User] = {}
        for start in range(0, len(wanted), ROW_KEYS_PER_QUERY):
            chunk = wanted[start:start + ROW_KEYS_PER_QUERY]
            parameters = {f"k{n}": user_row_key(user_id) for n, user_id in enumerate(chunk)}
            query = " or ".join(f"RowKey eq @k{n}" for n in range(len(chunk)))
            for row in self.table.query(query, parameters, partition=integration_id):
                user = from_entity(row)
                found[user.id] = user
        return found

    def all(self, integration_id: str) -> Iterator[User]:
        low, high = prefix_range(USER)
        for row in self.table.query("RowKey ge @low and RowKey lt @high", {"low": low, "high": high},
                                    partition=integration_id):
            yield from_entity(row)

    def summary(self, integration_id: str) -> Summary:
        row = self.table.get(integration_id, SUMMARY_ROW)
        if row is None:
            return Summary()
        return Summary(active=int(row.get("ActiveUsers", 0)), total=int(row.get("Users", 0)))

    def page(self, *, integration_id: str | None, active: bool | None, page_size: int,
             continuation: str | None) -> tuple[list[User], str | None]:
        """One page of people (optionally of one integration, optionally only (in)active ones).

        A page can be short or even empty and still have a continuation: keep following it."""
        low, high = prefix_range(USER)
        query = "RowKey ge @low and RowKey lt @high"
        parameters: dict[str, Any] = {"low": low, "high": high}
        if active is not None:
            query += " and Active eq @active"
            parameters["active"] = active
        result = self.table.query_page(query, parameters, partition=integration_id,
                                       page_size=min(page_size, MAX_PAGE_SIZE),
                                       continuation=decode_continuation(continuation))
        return [from_entity(row) for row in result.rows], encode_continuation(result.continuation)

    def pending_events(self, integration_id: str) -> list[PendingEvent]:
        low, high = prefix_range(OUTBOX)
        rows = self.table.query("RowKey ge @low and RowKey lt @high", {"low": low, "high": high},
                                partition=integration_id)
        return [PendingEvent(event_id=split(row["RowKey"])[1], type=row["Type"], integration_id=integration_id,
                             user_id=row["UserId"], at=utc_moment(row["At"])) for row in rows]

    # ---- writing ----------------------------------------------------------------------------

    def apply(self, integration_id: str, actions: Sequence[Action], index: IndexChanges, *,
              base: Summary, now: datetime, parallel: int = 1) -> ApplyResult:
        """Writes the planned people, their index rows, their events (outbox) and the summary.

        Each person's rows travel together. With `parallel=1` each transaction also carries the
        summary as it stands once that transaction is in, so the counters never disagree with
        the rows, even after a crash. `parallel>1` (for full reads, whose every retry recounts
        from the rows) sends transactions concurrently and writes the summary once at the end.
        Rows are built one transaction at a time, so a big first sync stays small in memory."""
        events: list[PendingEvent] = []
        change = _Tally()
        room = MAX_OPERATIONS - 1 if parallel <= 1 else MAX_OPERATIONS  # one slot for the summary row
        # The rows of addresses changing hands (an empty partition, a first sync, has none to read).
        wanted = set(index.released) | (set(index.owners) if base.total else set())
        held = self.index_rows(integration_id, wanted) if wanted else {}
        successors = self._successors(integration_id, actions, index, held)
        chunks = self._chunks(integration_id, actions, index, now, events, change, room, (held, successors))
        if parallel <= 1:
            transactions, summary = 0, base
            for chunk, tally in chunks:
                summary = Summary(active=base.active + tally.active, total=base.total + tally.total)
                self._commit(chunk + [_summary_operation(integration_id, summary)])
                transactions += 1
            return ApplyResult(transactions, events, summary)
        transactions = self._commit_concurrently((chunk for chunk, _ in chunks), parallel)
        summary = Summary(active=base.active + change.active, total=base.total + change.total)
        if transactions:
            self.set_summary(integration_id, summary)
        return ApplyResult(transactions, events, summary)

    def _chunks(self, integration_id: str, actions: Sequence[Action], index: IndexChanges, now: datetime,
                events: list[PendingEvent], change: "_Tally", room: int,
                held: tuple) -> Iterator[tuple[list[tuple], "_Tally"]]:
        """Transactions' worth (`room` operations at most) of people's operations, with the
        running count changes up to and including each."""
        chunk: list[tuple] = []
        for operations, active_change, total_change in self._groups(integration_id, actions, index, now, events,
                                                                     held):
            if chunk and len(chunk) + len(operations) > room:
                yield chunk, change.copy()
                chunk = []
            chunk.extend(operations)
            change.active += active_change
            change.total += total_change
        if chunk:
            yield chunk, change.copy()

    def _commit_concurrently(self, chunks: Iterator[list[tuple]], threads: int) -> int:
        """Independent transactions of one partition, a few in flight at a time."""
        committed = 0
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="users-write") as pool:
            pending: set[Future] = set()
            for chunk in chunks:
                if len(pending) >= threads * 2:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    committed += sum(future.result() for future in done)
                pending.add(pool.submit(self._commit, chunk))
            for future in pending:
                committed += future.result()
        return committed

    def set_summary(self, integration_id: str, summary: Summary) -> None:
        self.table.upsert(_summary_entity(integration_id, summary), mode=MERGE)

    def clear_events(self, integration_id: str, events: Sequence[PendingEvent]) -> int:
        """Deletes delivered outbox rows (one transaction per 100); returns the transactions used."""
        if not events:
            return 0
        operations = [("delete", {"PartitionKey": integration_id, "RowKey": compose(OUTBOX, e.event_id)})
                      for e in events]
        return self._transact_tolerating_missing(operations)

    def purge(self, integration_id: str) -> int:
        """Deletes every row of the integration (people, index, summary, outbox)."""
        keys = [row["RowKey"] for row in self.table.query(partition=integration_id, select=["RowKey"])]
        operations = [("delete", {"PartitionKey": integration_id, "RowKey": key}) for key in keys]
        return self._transact_tolerating_missing(operations) if operations else 0

    def purge_some(self, integration_id: str, limit: int) -> int:
        """Deletes up to `limit` rows of the integration; returns how many it found to delete
        (0 means the partition is empty). Idempotent, so a purge can stop and resume anywhere."""
        page = self.table.query_page(partition=integration_id, select=["RowKey"], page_size=max(1, min(limit, MAX_PAGE_SIZE)))
        operations = [("delete", {"PartitionKey": integration_id, "RowKey": row["RowKey"]}) for row in page.rows]
        if operations:
            self._transact_tolerating_missing(operations)
        return len(operations)

    def emails_of(self, integration_id: str) -> Iterator[str]:
        """Every address in the integration's email index."""
        low, high = prefix_range(EMAIL)
        for row in self.table.query("RowKey ge @low and RowKey lt @high", {"low": low, "high": high},
                                    partition=integration_id, select=["RowKey"]):
            yield decode_id(split(row["RowKey"])[1])

    # ---- internals --------------------------------------------------------------------------

    def _groups(self, integration_id: str, actions: Sequence[Action], index: IndexChanges, now: datetime,
                events: list[PendingEvent], held: tuple) -> Iterator[tuple[list[tuple], int, int]]:
        """Per person: their operations, and how the active and total counts change."""
        owned: dict[str, list[str]] = {}
        for email, user_id in index.owners.items():
            owned.setdefault(user_id, []).append(email)
        released: dict[str, list[str]] = {}
        for action in actions:
            old = action.previous.email if action.previous else None
            if old and old in index.released:
                released.setdefault(action.user.id, []).append(old)
        rows, successors = held
        releasing = _releasers(actions, index)
        placed_releases: set[str] = set()
        for action in actions:
            user = action.user
            operations: list[tuple] = [("upsert", to_entity(user), {"mode": REPLACE})]
            for email in owned.pop(user.id, ()):
                earlier = rows.get(email)
                others = [h for h in dict.fromkeys((earlier.user_id, *earlier.holders)) if h != user.id
                          and h not in releasing.get(email, ())] if earlier else []
                operations.append(("upsert", _index_entity(integration_id, email, user.id, others), {"mode": REPLACE}))
            for email in released.get(user.id, ()):
                row = rows.get(email)
                if email in placed_releases or row is None or row.user_id not in releasing.get(email, ()):
                    continue  # nothing to release, or the row names someone who keeps the address
                placed_releases.add(email)
                key = {"PartitionKey": integration_id, "RowKey": email_row_key(email)}
                still = successors.get(email, [])
                if still:
                    operations.append(("update", _index_entity(integration_id, email, still[0], still[1:]),
                                       {"etag": row.etag, "mode": REPLACE}))
                else:
                    operations.append(("delete", key, {"etag": row.etag}))
            if action.event:
                event = PendingEvent(event_id=f"{now:%Y%m%d%H%M%S%f}-{self._new_id()}", type=action.event,
                                     integration_id=integration_id, user_id=user.id, at=now)
                events.append(event)
                operations.append(("upsert", _outbox_entity(event), {"mode": REPLACE}))
            was_active = action.previous.active if action.previous else False
            yield operations, int(user.active) - int(was_active), 0 if action.previous else 1

    def _successors(self, integration_id: str, actions: Sequence[Action], index: IndexChanges,
                    rows: Mapping[str, "IndexRow"]) -> dict[str, list[str]]:
        """For each released address: the listed earlier holders who still have it once this
        plan is written (their new state if the plan changes them, else their stored one)."""
        releasing = _releasers(actions, index)
        planned = {a.user.id: a.user.email for a in actions}
        candidates = {email: [h for h in rows[email].holders if h not in releasing.get(email, ())]
                      for email in index.released if email in rows and rows[email].holders}
        unknown = {h for hs in candidates.values() for h in hs if h not in planned}
        stored = {u.id: u.email for u in self.get_many(integration_id, unknown).values()} if unknown else {}
        return {email: [h for h in hs if (planned[h] if h in planned else stored.get(h)) == email]
                for email, hs in candidates.items()}

    def _commit(self, operations: list[tuple]) -> int:
        return self._transact_tolerating_missing(operations, atomic=True)

    def _transact_tolerating_missing(self, operations: list[tuple], *, atomic: bool = False) -> int:
        """Inside a transaction, deleting a missing row fails the whole transaction; a row
        that is already gone is what the delete wanted, so drop it and try again. So is an
        index row whose ETag no longer matches: it changed hands, and is not ours to delete."""
        remaining = list(operations)
        while True:
            try:
                return self.table.transact(remaining, atomic=atomic)
            except TransactionError as error:
                failed = error.index
                tolerated = error.status == 404 or (error.status == 412 and isinstance(error, ConflictError))
                if (not tolerated or error.code == "TableNotFound" or failed is None or failed >= len(remaining)
                        or not _is_index_release(remaining[failed]) or error.committed):
                    raise
                del remaining[failed]
                if not remaining:
                    return 0


@dataclass(frozen=True)
class IndexRow:
    """An email index row as read: who it names, who else is still stored with the address."""

    user_id: str
    holders: tuple[str, ...]
    etag: str


def _releasers(actions: Sequence[Action], index: IndexChanges) -> dict[str, set[str]]:
    """Released address -> the people giving it up in this plan."""
    releasing: dict[str, set[str]] = {}
    for action in actions:
        old = action.previous.email if action.previous else None
        if old and old in index.released:
            releasing.setdefault(old, set()).add(action.user.id)
    return releasing


def _is_index_release(operation: tuple) -> bool:
    """A delete (of anything), or the conditional hand-over of an index row."""
    if operation[0] == "delete":
        return True
    return operation[0] == "update" and split(operation[1]["RowKey"])[0] == EMAIL


class _Tally:
    def __init__(self, active: int = 0, total: int = 0) -> None:
        self.active = active
        self.total = total

    def copy(self) -> "_Tally":
        return _Tally(self.active, self.total)


# ---- rows --------------------------------------------------------------------------------------

_FIELDS = (
    ("Email", "email"), ("Mail", "mail"), ("UserPrincipalName", "user_principal_name"),
    ("DisplayName", "display_name"), ("GivenName", "given_name"), ("Surname", "surname"),
    ("Department", "department"), ("JobTitle", "job_title"), ("OfficeLocation", "office_location"),
    ("UserType", "user_type"), ("DeactivationReason", "deactivation_reason"),
)


def to_entity(user: User) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": user.integration_id,
        "RowKey": user_row_key(user.id),
        "UserId": user.id,
        "AccountEnabled": user.account_enabled,
        "Active": user.active,
        "DeactivatedAt": user.deactivated_at,
        "CreatedAt": user.created_at,
        "UpdatedAt": user.updated_at,
    }
    for column, attribute in _FIELDS:
        entity[column] = getattr(user, attribute)
    return {name: value for name, value in entity.items() if value is not None}


def from_entity(row: Mapping[str, Any]) -> User:
    values = {attribute: row.get(column) for column, attribute in _FIELDS}
    return User(
        integration_id=row["PartitionKey"],
        id=row.get("UserId") or decode_id(split(row["RowKey"])[1]),
        account_enabled=bool(row.get("AccountEnabled", False)),
        active=bool(row.get("Active", False)),
        deactivated_at=utc_moment(row.get("DeactivatedAt")),
        created_at=utc_moment(row.get("CreatedAt")),
        updated_at=utc_moment(row.get("UpdatedAt")),
        **values,
    )


def _index_entity(integration_id: str, email: str, user_id: str, holders: Sequence[str] = ()) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": integration_id, "RowKey": email_row_key(email), "UserId": user_id}
    if holders:
        entity["Holders"] = json.dumps(list(holders))
    return entity


def _outbox_entity(event: PendingEvent) -> dict[str, Any]:
    return {"PartitionKey": event.integration_id, "RowKey": compose(OUTBOX, event.event_id),
            "Type": event.type, "UserId": event.user_id, "At": event.at}


def _summary_operation(integration_id: str, summary: Summary) -> tuple:
    return ("upsert", _summary_entity(integration_id, summary), {"mode": MERGE})


def _summary_entity(integration_id: str, summary: Summary) -> dict[str, Any]:
    return {"PartitionKey": integration_id, "RowKey": SUMMARY_ROW, "ActiveUsers": summary.active,
            "Users": summary.total}


# ---- continuation tokens for the API -------------------------------------------------------------

class BadContinuation(ValueError):
    """The continuation token was not one this API handed out."""


def encode_continuation(token: Mapping[str, Any] | None) -> str | None:
    if not token:
        return None
    text = json.dumps(dict(token), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def read_token(token: str) -> Any:
    """The JSON value inside a token written by encode_continuation; its shape is the caller's check."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadContinuation("the continuation token is not valid") from None


def decode_continuation(token: str | None) -> dict[str, str] | None:
    if token is None or token == "":
        return None
    value = read_token(token)
    if (not isinstance(value, dict) or not value or set(value) - {"PartitionKey", "RowKey"}
            or not all(v is None or isinstance(v, str) for v in value.values())
            or not any(value.values())):
        raise BadContinuation("the continuation token is not valid")
    return value
