"""One Azure table behind a small checked interface: keys validated before sending, ETag-guarded
updates, queries that follow continuation tokens, transactions cut to the service's limits, and
the service's failures turned into the typed errors of `sync.store.errors`.

Rows come back as azure-data-tables `TableEntity` objects: plain dicts of the properties, with
the ETag in `entity.metadata["etag"]` (read it with `etag_of`).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables import TableEntity, UpdateMode

from sync.store import batch_wire
from sync.store.batch import Operation, plan_transactions
from sync.store.batch_wire import TransactionRefused
from sync.store.errors import ConflictError, NotFoundError, StoreError, TransactionConflictError, TransactionError
from sync.store.filters import literal, substitute
from sync.store.keys import validate_key
from sync.store.stats import TableStats

MERGE = UpdateMode.MERGE
REPLACE = UpdateMode.REPLACE
MAX_PAGE_SIZE = 1000

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")

_ensured: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


def etag_of(entity: Mapping[str, Any]) -> str:
    """The ETag a row was read with, to pass to `Table.update` / `Table.delete`."""
    metadata = getattr(entity, "metadata", None) or {}
    etag = metadata.get("etag")
    if not etag:
        raise ValueError("this entity carries no ETag: use a row returned by Table.get() or Table.query()")
    return etag


def utc_moment(value: datetime | None) -> datetime | None:
    """Table datetimes come back as a datetime subclass: hand out plain UTC datetimes."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond, tzinfo=timezone.utc)


def validate_table_name(name: object) -> str:
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"table name {name!r} is invalid: use 3-63 letters and digits, starting with a letter")
    return name


@dataclass(frozen=True)
class Page:
    """One page of a query. `continuation` is opaque; None means there is nothing more.

    An empty page may still carry a continuation: the service stops early when its time
    budget runs out, so only a missing continuation ends a query.
    """

    rows: list[TableEntity]
    continuation: Mapping[str, Any] | None


class Table:
    """One table of the account behind `service` (an azure-data-tables TableServiceClient)."""

    def __init__(self, service: Any, name: str, *, stats: TableStats | None = None) -> None:
        self.name = validate_table_name(name)
        self.stats = stats if stats is not None else TableStats()
        self._service = service
        self._client = service.get_table_client(name)

    @property
    def client(self):
        """The underlying TableClient, for what this class does not cover (it skips our checks)."""
        return self._client

    def ensure(self) -> "Table":
        """Create the table unless this process already did so or saw it exist; safe to call often."""
        marker = (str(getattr(self._service, "url", id(self._service))), self.name)
        if marker in _ensured:
            return self
        self.stats.record(requests=1)
        try:
            self._service.create_table(self.name)
        except ResourceExistsError:
            pass
        except HttpResponseError as error:
            raise self._failure(error, "create table") from error
        with _ensured_lock:
            _ensured.add(marker)
        return self

    def get(self, partition_key: str, row_key: str, *, select: list[str] | None = None) -> TableEntity | None:
        """The row, or None when it does not exist (a missing table raises NotFoundError)."""
        validate_key(partition_key, "PartitionKey")
        validate_key(row_key, "RowKey")
        self.stats.record(requests=1)
        try:
            entity = self._client.get_entity(partition_key, row_key, select=select)
        except HttpResponseError as error:
            failure = self._failure(error, "get", partition_key, row_key)
            if isinstance(failure, NotFoundError) and failure.row_key is not None:
                return None
            raise failure from error
        self.stats.record(rows_read=1)
        return entity

    def insert(self, entity: Mapping[str, Any]) -> str:
        """Create the row; ConflictError(kind="exists") if it is already there. Returns the new ETag."""
        partition_key, row_key = _keys_of(entity)
        self.stats.record(requests=1, operations=1)
        try:
            metadata = self._client.create_entity(entity)
        except HttpResponseError as error:
            raise self._failure(error, "insert", partition_key, row_key) from error
        return metadata.get("etag")

    def upsert(self, entity: Mapping[str, Any], mode: UpdateMode | str = MERGE) -> str:
        """Write the row whatever is there (merge or replace). Only for rows nobody else changes."""
        partition_key, row_key = _keys_of(entity)
        update_mode = _mode(mode)
        self.stats.record(requests=1, operations=1)
        try:
            metadata = self._client.upsert_entity(entity, mode=update_mode)
        except HttpResponseError as error:
            raise self._failure(error, "upsert", partition_key, row_key) from error
        return metadata.get("etag")

    def update(self, entity: Mapping[str, Any], etag: str, mode: UpdateMode | str = MERGE) -> str:
        """Write the row only if it still has `etag`: ConflictError(kind="modified") if it changed,
        NotFoundError if it is gone. Returns the new ETag."""
        partition_key, row_key = _keys_of(entity)
        _require_etag(etag, "update")
        update_mode = _mode(mode)
        self.stats.record(requests=1, operations=1)
        try:
            metadata = self._client.update_entity(entity, mode=update_mode, etag=etag,
                                                  match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as error:
            raise self._failure(error, "update", partition_key, row_key) from error
        return metadata.get("etag")

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        """Delete the row. Without `etag` a missing row is fine (the goal is met). With `etag`
        the delete happens only if the row is unchanged: ConflictError(kind="modified") if it
        changed, NotFoundError if someone else already deleted it."""
        validate_key(partition_key, "PartitionKey")
        validate_key(row_key, "RowKey")
        guard: dict[str, Any] = {}
        if etag is not None:
            _require_etag(etag, "delete")
            guard = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        responses: list[Any] = []
        self.stats.record(requests=1, operations=1)
        try:
            # The SDK swallows 404 on delete; the hook lets us tell "no such table" and, for a
            # guarded delete, "already gone" apart from success.
            self._client.delete_entity(partition_key, row_key, raw_response_hook=responses.append, **guard)
        except HttpResponseError as error:
            raise self._failure(error, "delete", partition_key, row_key) from error
        if responses and responses[-1].http_response.status_code == 404:
            code = responses[-1].http_response.headers.get("x-ms-error-code")
            if code == "TableNotFound":
                raise NotFoundError(table=self.name, code=code, hint="call ensure() first")
            if etag is not None:
                raise NotFoundError(table=self.name, partition_key=partition_key, row_key=row_key, code=code)

    def query(self, filter: str | None = None, parameters: Mapping[str, Any] | None = None, *,
              select: list[str] | None = None, partition: str | None = None,
              page_size: int = MAX_PAGE_SIZE) -> Iterator[TableEntity]:
        """Every row matching `filter` (values as `@name` parameters) and/or in `partition`,
        fetched page by page until the service stops sending a continuation."""
        continuation = None
        while True:
            page = self.query_page(filter, parameters, select=select, partition=partition,
                                   page_size=page_size, continuation=continuation)
            yield from page.rows
            if page.continuation is None:
                return
            continuation = page.continuation

    def query_page(self, filter: str | None = None, parameters: Mapping[str, Any] | None = None, *,
                   select: list[str] | None = None, partition: str | None = None,
                   page_size: int = MAX_PAGE_SIZE, continuation: Mapping[str, Any] | None = None) -> Page:
        """One request's worth of a query, resumable from `continuation` (see Page)."""
        query_filter = _combined_filter(filter, parameters, partition)
        _check_page_size(page_size)
        if query_filter:
            pager = self._client.query_entities(query_filter, results_per_page=page_size, select=select)
        else:
            pager = self._client.list_entities(results_per_page=page_size, select=select)
        pages = pager.by_page(continuation_token=continuation)
        self.stats.record(requests=1, pages=1)
        try:
            rows = list(next(pages))
        except HttpResponseError as error:
            raise self._failure(error, "query") from error
        self.stats.record(rows_read=len(rows))
        return Page(rows, pages.continuation_token)

    def transact(self, operations: Iterable[Any], *, atomic: bool = False) -> int:
        """Apply operations in entity-group transactions; returns how many were submitted.

        Operations look like azure-data-tables': ("create", e), ("upsert", e, {"mode": REPLACE}),
        ("update", e, {"etag": etag}), ("delete", e[, {"etag": etag}]). An etag always means
        If-Match on it. Operations are grouped by PartitionKey and cut into transactions of at
        most 100 operations and under 4 MiB; each transaction is atomic, the call as a whole is
        not (see TransactionError.committed). `atomic=True` refuses work that would need more
        than one transaction. Inside a transaction a delete of a missing row fails it (a service
        rule), unlike `delete`. Everything is checked before the first request.
        """
        transactions = plan_transactions(operations)
        if atomic and len(transactions) > 1:
            partitions = len({chunk[0].partition_key for chunk in transactions})
            raise TransactionError(f"atomic=True, but the operations need {len(transactions)} transactions "
                                   f"({partitions} partition(s)); an atomic write must fit one partition, "
                                   "100 operations and 4 MiB", table=self.name)
        committed = 0
        for chunk in transactions:
            self.stats.record(requests=1, transactions=1, operations=len(chunk))
            try:
                batch_wire.submit(self._client, [operation.for_sdk() for operation in chunk])
            except TransactionRefused as refusal:
                raise self._transaction_failure(refusal, chunk, committed) from refusal
            except HttpResponseError as error:
                raise TransactionError(f"the service refused the transaction (HTTP {error.status_code} "
                                       f"{_code(error)})", table=self.name, committed=committed,
                                       status=error.status_code, code=_code(error)) from error
            committed += 1
        return committed

    def _failure(self, error: HttpResponseError, action: str, partition_key: str | None = None,
                 row_key: str | None = None) -> StoreError:
        status, code = error.status_code, _code(error)
        keys = dict(table=self.name, partition_key=partition_key, row_key=row_key, status=status, code=code)
        if status == 412:
            return ConflictError(ConflictError.MODIFIED, **keys)
        if status == 409 and code in (None, "EntityAlreadyExists", "ResourceAlreadyExists"):
            return ConflictError(ConflictError.EXISTS, **keys)
        if status == 404:
            if code == "TableNotFound" or partition_key is None:
                return NotFoundError(table=self.name, status=status, code=code, hint="call ensure() first")
            return NotFoundError(**keys)
        return StoreError(f"{action} on table {self.name!r} failed: HTTP {status} {code or ''}".rstrip(),
                          table=self.name, status=status, code=code)

    def _transaction_failure(self, refusal: TransactionRefused, chunk: list[Operation],
                             committed: int) -> TransactionError:
        status, code, message = refusal.status, refusal.code, refusal.message
        if refusal.scope != TransactionRefused.OPERATION:
            reason = (f"the service refused the transaction (HTTP {status} {code})"
                      if refusal.scope == TransactionRefused.REQUEST else f"{message}; it may have been applied")
            return TransactionError(reason, table=self.name, committed=committed, status=status, code=code)
        failed = None
        if refusal.index is not None and refusal.index < len(chunk):
            failed = chunk[refusal.index]
        elif len(chunk) == 1:
            failed = chunk[0]
        where = dict(index=failed.index if failed else None, table=self.name,
                     partition_key=failed.partition_key if failed else chunk[0].partition_key,
                     row_key=failed.row_key if failed else None, committed=committed, status=status, code=code)
        if status == 412:
            return TransactionConflictError(ConflictError.MODIFIED, **where)
        if status == 409 and code in ("EntityAlreadyExists", "ResourceAlreadyExists"):
            return TransactionConflictError(ConflictError.EXISTS, **where)
        return TransactionError(f"{message.strip() or 'refused'} ({code or f'HTTP {status}'})", **where)


def _code(error: HttpResponseError) -> str | None:
    code = getattr(error, "error_code", None)
    if code is None and getattr(error, "response", None) is not None:
        code = error.response.headers.get("x-ms-error-code")
    return getattr(code, "value", code)


def _keys_of(entity: Mapping[str, Any]) -> tuple[str, str]:
    if not isinstance(entity, Mapping):
        raise TypeError(f"an entity must be a mapping, not {type(entity).__name__}")
    return validate_key(entity.get("PartitionKey"), "PartitionKey"), validate_key(entity.get("RowKey"), "RowKey")


def _mode(mode: UpdateMode | str) -> UpdateMode:
    try:
        return UpdateMode(getattr(mode, "value", mode))
    except ValueError:
        raise ValueError(f"mode must be 'merge' or 'replace', not {mode!r}") from None


def _require_etag(etag: object, action: str) -> None:
    if not isinstance(etag, str) or not etag or etag == "*":
        raise ValueError(f"{action} needs the ETag the row was read with (etag_of(row)); "
                         "use upsert() for a write that does not depend on what is there")


def _check_page_size(page_size: object) -> None:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, not {page_size!r}")


def _combined_filter(query_filter: str | None, parameters: Mapping[str, Any] | None,
                     partition: str | None) -> str | None:
    clauses = []
    if partition is not None:
        clauses.append(f"PartitionKey eq {literal(validate_key(partition, 'partition'))}")
    if query_filter:
        clauses.append(f"({substitute(query_filter, parameters)})")
    elif parameters:
        raise ValueError("query parameters were given without a filter to use them")
    return " and ".join(clauses) or None
