"""The `integrations` table: one row per connected tenant, and the rows that keep tenants and
domains unique.

PartitionKey `integrations` (there are few integrations and the API lists them all). RowKeys:

| RowKey | row |
|---|---|
| `<integration id>` (a UUID) | the integration |
| `tenant!<tenant id>` | guard: `IntegrationId` of the one integration connecting this tenant |
| `domain!<domain>` | guard: `IntegrationId` of the one integration claiming this domain |

The guard rows are created in the same entity-group transaction as the integration and deleted
in the same transaction as it, so two concurrent connects of one tenant or domain cannot both
succeed: the second transaction fails on an existing guard row. Updates are ETag-guarded: the
API (rotating a secret) and sync runs (parking an integration) may write the same row concurrently.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Iterator, Mapping

from sync.model import Integration, IntegrationOptions
from sync.store.catalog import Store
from sync.store.errors import ConflictError, TransactionConflictError, TransactionError
from sync.store.keys import SEPARATOR, compose
from sync.store.tables import REPLACE, etag_of, utc_moment

TABLE = "integrations"
PARTITION = "integrations"
TENANT_GUARD = "tenant"
DOMAIN_GUARD = "domain"


def guard_keys(integration: Integration) -> list[tuple[str, str]]:
    """(kind, value) of every guard row an integration holds: its tenant and each domain."""
    return [(TENANT_GUARD, integration.tenant_id.lower())] + [(DOMAIN_GUARD, d.lower()) for d in integration.domains]


def guard_row_key(kind: str, value: str) -> str:
    return compose(kind, value)


class GuardTaken(ConflictError):
    """Another integration already holds the tenant or a domain (`kind`, `value`, `owner_id`)."""

    def __init__(self, kind: str, value: str, owner_id: str | None) -> None:
        super().__init__(ConflictError.EXISTS, table=TABLE, partition_key=PARTITION,
                         row_key=guard_row_key(kind, value))
        self.guard_kind = kind
        self.value = value
        self.owner_id = owner_id


class IntegrationsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    def get(self, integration_id: str) -> Integration | None:
        row = self.table.get(PARTITION, integration_id)
        return from_entity(row) if row is not None else None

    def list(self) -> Iterator[Integration]:
        for row in self.table.query(partition=PARTITION):
            if SEPARATOR not in row["RowKey"]:  # guard rows are not integrations
                yield from_entity(row)

    def guard_owner(self, kind: str, value: str) -> str | None:
        """The id of the integration holding the tenant or domain guard, if any."""
        row = self.table.get(PARTITION, guard_row_key(kind, value.lower()))
        return row.get("IntegrationId") if row is not None else None

    def insert(self, integration: Integration) -> Integration:
        """Creates the integration with its guard rows in one transaction; GuardTaken when another
        integration holds the tenant or one of the domains (nothing is written then)."""
        guards = guard_keys(integration)
        operations: list[tuple] = [("create", to_entity(integration))]
        operations += [("create", _guard_entity(kind, value, integration.id)) for kind, value in guards]
        try:
            self.table.transact(operations, atomic=True)
        except TransactionConflictError as error:
            if error.kind != ConflictError.EXISTS or not error.index:
                raise
            kind, value = guards[error.index - 1]
            raise GuardTaken(kind, value, self.guard_owner(kind, value)) from None
        stored = self.table.get(PARTITION, integration.id)
        return _with_etag(integration, etag_of(stored) if stored is not None else None)

    def update(self, integration: Integration) -> Integration:
        """Writes the whole row if nobody changed it since it was read (ConflictError otherwise)."""
        if not integration.etag:
            raise ValueError("update an integration read from the table (it carries the row's ETag)")
        etag = self.table.update(to_entity(integration), integration.etag, mode=REPLACE)
        return _with_etag(integration, etag)

    def remove(self, integration: Integration) -> None:
        """Deletes the integration (ETag-guarded) and the guard rows it holds, in one transaction.
        Guard rows that are missing (integrations from before guards) or held by another
        integration are left out."""
        if not integration.etag:
            raise ValueError("remove an integration read from the table (it carries the row's ETag)")
        operations: list[tuple] = [("delete", {"PartitionKey": PARTITION, "RowKey": integration.id},
                                    {"etag": integration.etag})]
        for kind, value in guard_keys(integration):
            row = self.table.get(PARTITION, guard_row_key(kind, value))
            if row is not None and row.get("IntegrationId") == integration.id:
                operations.append(("delete", {"PartitionKey": PARTITION, "RowKey": row["RowKey"]},
                                   {"etag": etag_of(row)}))
        try:
            self.table.transact(operations, atomic=True)
        except TransactionConflictError:
            raise
        except TransactionError as error:
            if error.status == 404 and error.index == 0:
                return  # someone else removed it already
            raise


def _with_etag(integration: Integration, etag: str | None) -> Integration:
    return replace(integration, etag=etag)


def _guard_entity(kind: str, value: str, integration_id: str) -> dict[str, Any]:
    return {"PartitionKey": PARTITION, "RowKey": guard_row_key(kind, value), "IntegrationId": integration_id,
            "Kind": kind}


def to_entity(integration: Integration) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": integration.id,
        "Domains": json.dumps(list(integration.domains)),
        "TenantId": integration.tenant_id,
        "ClientId": integration.client_id,
        "SealedSecret": integration.sealed_secret,
        "SecretExpiresAt": integration.secret_expires_at,
        "Status": integration.status,
        "StatusReason": integration.status_reason,
        "StatusChangedAt": integration.status_changed_at,
        "Mode": integration.mode,
        "GrantedRoles": json.dumps(list(integration.granted_roles)),
        "Options": json.dumps(integration.options.as_dict()),
        "CreatedAt": integration.created_at,
        "ActivatedAt": integration.activated_at,
        "UpdatedAt": integration.updated_at,
        "DomainProofs": json.dumps(dict(sorted(integration.domain_proofs.items()))),
        "DeletionRequestedAt": integration.deletion_requested_at,
        "PurgedSteps": json.dumps(list(integration.purged_steps)) if integration.purged_steps else None,
    }
    # The SDK leaves None-valued properties out; REPLACE then removes them from the row.
    return {name: value for name, value in entity.items() if value is not None}


def from_entity(row: Mapping[str, Any]) -> Integration:
    options = json.loads(row.get("Options") or "{}")
    return Integration(
        id=row["RowKey"],
        domains=tuple(json.loads(row.get("Domains") or "[]")),
        tenant_id=row["TenantId"],
        client_id=row["ClientId"],
        sealed_secret=row["SealedSecret"],
        secret_expires_at=utc_moment(row.get("SecretExpiresAt")),
        status=row["Status"],
        status_reason=row.get("StatusReason"),
        status_changed_at=utc_moment(row.get("StatusChangedAt")),
        mode=row["Mode"],
        granted_roles=tuple(json.loads(row.get("GrantedRoles") or "[]")),
        options=IntegrationOptions.from_dict(options),
        created_at=utc_moment(row.get("CreatedAt")),
        activated_at=utc_moment(row.get("ActivatedAt")),
        updated_at=utc_moment(row.get("UpdatedAt")),
        domain_proofs=dict(json.loads(row.get("DomainProofs") or "{}")),
        deletion_requested_at=utc_moment(row.get("DeletionRequestedAt")),
        purged_steps=tuple(json.loads(row.get("PurgedSteps") or "[]")),
        etag=etag_of(row) if getattr(row, "metadata", None) else None,
    )
