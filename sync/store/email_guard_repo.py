"""The `emailguard` table: which integration an email address belongs to, across all of them.

People of two integrations must never share an address (the platform knows a person by it), and
each integration's own email index lives in its own partition, so nothing there can see a clash.
One row per address held anywhere: PartitionKey the first two hex digits of the address's
sha256 (256 partitions, so a first sync of many people spreads its writes), RowKey the whole
digest, `IntegrationId` the holder. The address itself is not stored.

Claiming is an insert, so of two integrations claiming one address at the same moment exactly
one wins; a claim that finds the row already held by the same integration is fine (a run that
crashed after claiming comes back). Releasing deletes the row only while this integration
holds it (read, then delete with the ETag).
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

from sync.store.batch import MAX_OPERATIONS
from sync.store.catalog import Store
from sync.store.errors import ConflictError, NotFoundError, TransactionError
from sync.store.keys import hash_key
from sync.store.tables import etag_of

log = logging.getLogger(__name__)

TABLE = "emailguard"


def guard_keys(email: str) -> tuple[str, str]:
    digest = hash_key(email.strip().lower())
    return digest[:2], digest


class EmailGuard:
    def __init__(self, store: Store, *, writers: int = 4) -> None:
        self._store = store
        self._writers = writers

    @property
    def table(self):
        return self._store.table(TABLE)

    def owner(self, email: str) -> str | None:
        """The integration holding the address, or None."""
        partition, row_key = guard_keys(email)
        row = self.table.get(partition, row_key)
        return row.get("IntegrationId") if row is not None else None

    def claim(self, integration_id: str, emails: Iterable[str]) -> dict[str, str]:
        """Claims every address for the integration; returns the refused ones (address -> the
        integration holding it). Addresses already held by this integration count as claimed."""
        by_partition: dict[str, list[tuple[str, str]]] = {}
        for email in dict.fromkeys(e.strip().lower() for e in emails if e):
            partition, row_key = guard_keys(email)
            by_partition.setdefault(partition, []).append((email, row_key))
        chunks = [(partition, items[start:start + MAX_OPERATIONS])
                  for partition, items in by_partition.items() for start in range(0, len(items), MAX_OPERATIONS)]
        refused: dict[str, str] = {}
        if not chunks:
            return refused
        with ThreadPoolExecutor(max_workers=max(1, min(self._writers, len(chunks))),
                                thread_name_prefix="email-guard") as pool:
            for found in pool.map(lambda chunk: self._claim_chunk(integration_id, *chunk), chunks):
                refused.update(found)
        return refused

    def _claim_chunk(self, integration_id: str, partition: str, items: list[tuple[str, str]]) -> dict[str, str]:
        operations = [("create", _entity(partition, row_key, integration_id)) for _, row_key in items]
        try:
            self.table.transact(operations, atomic=True)
            return {}
        except ConflictError:
            pass  # some are held already: settle them one by one
        refused: dict[str, str] = {}
        for email, row_key in items:
            holder = self._claim_one(integration_id, partition, row_key)
            if holder != integration_id:
                refused[email] = holder
        return refused

    def _claim_one(self, integration_id: str, partition: str, row_key: str) -> str:
        """The holder after trying to claim one address (this integration when the claim held)."""
        for _ in range(3):
            try:
                self.table.insert(_entity(partition, row_key, integration_id))
                return integration_id
            except ConflictError:
                row = self.table.get(partition, row_key)
                if row is not None:
                    return row.get("IntegrationId") or ""
        raise ConflictError(ConflictError.EXISTS, table=TABLE, partition_key=partition, row_key=row_key)

    def release(self, integration_id: str, emails: Iterable[str]) -> int:
        """Gives up the addresses this integration holds (others' rows are left alone); returns
        how many rows were deleted."""
        released = 0
        for email in dict.fromkeys(e.strip().lower() for e in emails if e):
            partition, row_key = guard_keys(email)
            row = self.table.get(partition, row_key)
            if row is None or row.get("IntegrationId") != integration_id:
                continue
            try:
                self.table.delete(partition, row_key, etag=etag_of(row))
                released += 1
            except (ConflictError, NotFoundError):
                continue  # it changed hands or went meanwhile: not ours to delete
        return released

    def purge_some(self, integration_id: str, limit: int) -> int:
        """Deletes up to `limit` rows held by the integration (a scan of the table: purges are
        rare, and this also finds rows a crashed run claimed but never used); returns how many
        it found, 0 once none are left."""
        found = 0
        for row in self.table.query("IntegrationId eq @owner", {"owner": integration_id},
                                    select=["PartitionKey", "RowKey", "IntegrationId"]):
            try:
                self.table.delete(row["PartitionKey"], row["RowKey"], etag=etag_of(row))
            except (ConflictError, NotFoundError, TransactionError):
                pass
            found += 1
            if found >= limit:
                break
        return found


def _entity(partition: str, row_key: str, integration_id: str) -> dict[str, str]:
    return {"PartitionKey": partition, "RowKey": row_key, "IntegrationId": integration_id}
