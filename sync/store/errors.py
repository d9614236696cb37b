"""Typed failures of the Table layer, so callers branch on meaning instead of HTTP codes.

Messages name the table, keys and the service's error code; they never carry entity values
or connection details, so they are safe to log. A service's own words (a refused transaction's
message) pass through sync.redaction first, in case they quote a signed URL.
"""
from __future__ import annotations

from sync.redaction import redact


class StoreError(Exception):
    """Anything the Table layer could not do. `status` and `code` come from the service when known."""

    def __init__(self, message: str, *, table: str | None = None, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(redact(message))
        self.table = table
        self.status = status
        self.code = code


class ConflictError(StoreError):
    """Someone else got there first: the row already exists, or it changed since it was read.

    `kind` is `ConflictError.EXISTS` (409 on insert) or `ConflictError.MODIFIED` (412: the
    ETag no longer matches). Re-read and decide again; never retry blindly.
    """

    EXISTS = "exists"
    MODIFIED = "modified"

    def __init__(self, kind: str, *, table: str | None = None, partition_key: str | None = None,
                 row_key: str | None = None, status: int | None = None, code: str | None = None) -> None:
        if kind not in (self.EXISTS, self.MODIFIED):
            raise ValueError(f"unknown conflict kind {kind!r}")
        what = "already exists" if kind == self.EXISTS else "changed since it was read (ETag mismatch)"
        StoreError.__init__(self, f"row {_where(table, partition_key, row_key)} {what}",
                            table=table, status=status, code=code)
        self.kind = kind
        self.partition_key = partition_key
        self.row_key = row_key


class NotFoundError(StoreError):
    """The row (or the whole table, when both keys are None) is not there."""

    def __init__(self, *, table: str | None = None, partition_key: str | None = None,
                 row_key: str | None = None, status: int | None = 404, code: str | None = None,
                 hint: str = "") -> None:
        if partition_key is None and row_key is None:
            message = f"table {table!r} does not exist"
        else:
            message = f"row {_where(table, partition_key, row_key)} does not exist"
        super().__init__(message + (f"; {hint}" if hint else ""), table=table, status=status, code=code)
        self.partition_key = partition_key
        self.row_key = row_key


class InvalidKeyError(StoreError, ValueError):
    """A PartitionKey/RowKey the service would refuse, caught before any request.

    `what` names the key ("RowKey", "PartitionKey of operation 3", ...); `char` and `position`
    are set when one character is at fault. The key itself is not repeated in the message.
    """

    def __init__(self, what: str, problem: str, *, char: str | None = None,
                 position: int | None = None) -> None:
        if char is not None:
            shown = repr(char) if char.isprintable() else "a control character"
            message = f"{what} contains {shown} (U+{ord(char):04X}) at position {position}: {problem}"
        else:
            message = f"{what} {problem}"
        super().__init__(message)
        self.what = what
        self.problem = problem
        self.char = char
        self.position = position


class TransactionError(StoreError):
    """An entity-group transaction was refused (or could not be built).

    `index` is the position of the failing operation in the list the caller passed (None when
    the failure is not tied to one operation); `reason` is the service's or our explanation.
    `committed` counts the transactions of the same call that had already been committed:
    each transaction is atomic, a call spanning several is not.
    """

    def __init__(self, reason: str, *, index: int | None = None, table: str | None = None,
                 partition_key: str | None = None, row_key: str | None = None, committed: int = 0,
                 status: int | None = None, code: str | None = None) -> None:
        where = f"operation {index}" if index is not None else "transaction"
        keys = f" (row {_where(None, partition_key, row_key)})" if partition_key is not None else ""
        table_part = f" on table {table!r}" if table else ""
        # Called explicitly, not via super(): TransactionConflictError also derives from ConflictError.
        StoreError.__init__(self, f"{where}{keys}{table_part} failed: {reason}", table=table, status=status, code=code)
        self.reason = redact(reason)
        self.index = index
        self.partition_key = partition_key
        self.row_key = row_key
        self.committed = committed


class TransactionConflictError(TransactionError, ConflictError):
    """A conflict inside a transaction: catchable as ConflictError and as TransactionError."""

    def __init__(self, kind: str, *, index: int | None, table: str | None = None,
                 partition_key: str | None = None, row_key: str | None = None, committed: int = 0,
                 status: int | None = None, code: str | None = None) -> None:
        if kind not in (ConflictError.EXISTS, ConflictError.MODIFIED):
            raise ValueError(f"unknown conflict kind {kind!r}")
        reason = "row already exists" if kind == ConflictError.EXISTS else "row changed since it was read (ETag mismatch)"
        TransactionError.__init__(self, reason, index=index, table=table, partition_key=partition_key,
                                  row_key=row_key, committed=committed, status=status, code=code)
        self.kind = kind


def _where(table: str | None, partition_key: str | None, row_key: str | None) -> str:
    place = f"({partition_key!r}, {row_key!r})"
    return f"{place} in table {table!r}" if table else place
