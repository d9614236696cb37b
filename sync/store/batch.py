"""Planning entity-group transactions: checked, grouped by partition and cut to the service's limits.

A transaction holds at most 100 operations of one partition, under 4 MiB, each row at most
once. Planning is pure, so every refusal happens before the first request is sent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode

from sync.store.batch_wire import OPTIONS_BY_KIND
from sync.store.errors import TransactionError
from sync.store.keys import validate_key

MAX_OPERATIONS = 100
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024 - 64 * 1024
"""4 MiB is the service's limit for the whole body; keep a margin for our estimate's slack."""

_OPERATION_OVERHEAD = 1024
"""Bytes of multipart headers, request line and URL around each operation (a generous guess)."""


@dataclass(frozen=True)
class Operation:
    """One checked operation; `index` is its position in the caller's list."""

    index: int
    kind: str
    entity: Mapping[str, Any]
    options: Mapping[str, Any]
    partition_key: str
    row_key: str
    size: int

    def for_sdk(self) -> tuple:
        return (self.kind, self.entity, dict(self.options)) if self.options else (self.kind, self.entity)


def plan_transactions(operations: Iterable[Any], *, max_operations: int = MAX_OPERATIONS,
                      max_bytes: int = MAX_PAYLOAD_BYTES) -> list[list[Operation]]:
    """Check every operation, then cut them into transactions (partition order of first appearance).

    The same row twice in one call is refused, wherever the cut would fall: which of two writes
    to a row wins should not depend on where 100 operations happen to end.
    """
    checked = [_check(index, operation) for index, operation in enumerate(operations)]
    seen: dict[tuple[str, str], int] = {}
    for operation in checked:
        row = (operation.partition_key, operation.row_key)
        if row in seen:
            raise TransactionError(f"the same row appears twice in one call (operations {seen[row]} and "
                                   f"{operation.index}); a transaction may touch each row once",
                                   index=operation.index, partition_key=row[0], row_key=row[1],
                                   code="InvalidDuplicateRow")
        seen[row] = operation.index
        if operation.size > max_bytes:
            raise TransactionError(f"the entity is too large for a transaction (about {operation.size} bytes)",
                                   index=operation.index, partition_key=row[0], row_key=row[1])

    by_partition: dict[str, list[Operation]] = {}
    for operation in checked:
        by_partition.setdefault(operation.partition_key, []).append(operation)

    transactions: list[list[Operation]] = []
    for group in by_partition.values():
        current: list[Operation] = []
        current_bytes = 0
        for operation in group:
            if current and (len(current) >= max_operations or current_bytes + operation.size > max_bytes):
                transactions.append(current)
                current, current_bytes = [], 0
            current.append(operation)
            current_bytes += operation.size
        transactions.append(current)
    return transactions


def _check(index: int, operation: Any) -> Operation:
    if not isinstance(operation, (tuple, list)) or len(operation) not in (2, 3):
        raise TransactionError("each operation must be (kind, entity) or (kind, entity, options)", index=index)
    kind, entity = operation[0], operation[1]
    options_given = operation[2] if len(operation) == 3 else None
    if options_given is not None and not isinstance(options_given, Mapping):
        raise TransactionError(f"options must be a mapping, not {type(options_given).__name__}", index=index)
    options = dict(options_given or {})
    kind = getattr(kind, "value", kind)
    if not isinstance(kind, str) or kind.lower() not in OPTIONS_BY_KIND:
        raise TransactionError(f"unknown operation kind {kind!r}; use one of {', '.join(OPTIONS_BY_KIND)}",
                               index=index)
    kind = kind.lower()
    if not isinstance(entity, Mapping):
        raise TransactionError(f"the entity must be a mapping, not {type(entity).__name__}", index=index)
    partition_key = validate_key(entity.get("PartitionKey"), what=f"PartitionKey of operation {index}")
    row_key = validate_key(entity.get("RowKey"), what=f"RowKey of operation {index}")
    unknown = sorted(set(options) - OPTIONS_BY_KIND[kind])
    if unknown:
        raise TransactionError(f"option(s) {', '.join(unknown)} do not apply to {kind!r}", index=index,
                               partition_key=partition_key, row_key=row_key)
    if "mode" in options:
        options["mode"] = _mode(options["mode"], index)
    if kind in ("update", "delete"):
        _guard_with_etag(options, entity, index)
    size = _OPERATION_OVERHEAD + 3 * _utf8_size(partition_key + row_key)
    if kind != "delete":
        size += estimate_entity_bytes(entity)
    return Operation(index, kind, entity, options, partition_key, row_key, size)


def _mode(mode: Any, index: int) -> UpdateMode:
    try:
        return UpdateMode(getattr(mode, "value", mode))
    except ValueError:
        raise TransactionError(f"mode must be 'merge' or 'replace', not {mode!r}", index=index) from None


def _guard_with_etag(options: dict, entity: Mapping, index: int) -> None:
    """An etag means If-Match on that etag; the SDK alone would send If-Match: * for it."""
    condition = options.get("match_condition")
    etag = options.get("etag")
    if condition == MatchConditions.IfNotModified and not etag and isinstance(entity, TableEntity):
        etag = entity.metadata.get("etag")
    if etag:
        if condition not in (None, MatchConditions.IfNotModified):
            raise TransactionError("an etag only makes sense with MatchConditions.IfNotModified", index=index)
        options["etag"] = etag
        options["match_condition"] = MatchConditions.IfNotModified
    elif condition == MatchConditions.IfNotModified:
        raise TransactionError("IfNotModified needs an etag", index=index)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def estimate_entity_bytes(entity: Mapping[str, Any]) -> int:
    """An upper-bound guess of an entity's JSON size in a transaction body."""
    total = 2
    for name, value in entity.items():
        total += len(name) * 2 + 48  # the name, and its "@odata.type" annotation when typed
        value = getattr(value, "value", value)  # EntityProperty
        if isinstance(value, str):
            total += len(json.dumps(value))  # ASCII-escaped: never smaller than the bytes sent
        elif isinstance(value, (bytes, bytearray)):
            total += 4 * (len(value) + 2) // 3 + 2
        else:
            total += 64
    return total
