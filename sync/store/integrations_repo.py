"""The `integrations` table: one row per connected tenant.

PartitionKey `integrations` (there are few integrations and the API lists them all), RowKey the
integration id (a UUID, key-safe as it is). Updates are ETag-guarded: the API (rotating a
secret) and sync runs (parking an integration) may write the same row concurrently.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Iterator, Mapping

from sync.model import Integration, IntegrationOptions
from sync.store.catalog import Store
from sync.store.tables import REPLACE, etag_of, utc_moment

TABLE = "integrations"
PARTITION = "integrations"


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
            yield from_entity(row)

    def insert(self, integration: Integration) -> Integration:
        etag = self.table.insert(to_entity(integration))
        return _with_etag(integration, etag)

    def update(self, integration: Integration) -> Integration:
        """Writes the whole row if nobody changed it since it was read (ConflictError otherwise)."""
        if not integration.etag:
            raise ValueError("update an integration read from the table (it carries the row's ETag)")
        etag = self.table.update(to_entity(integration), integration.etag, mode=REPLACE)
        return _with_etag(integration, etag)

    def delete(self, integration: Integration) -> None:
        self.table.delete(PARTITION, integration.id, etag=integration.etag)


def _with_etag(integration: Integration, etag: str | None) -> Integration:
    return replace(integration, etag=etag)


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
        options=IntegrationOptions(max_deactivation_share=options.get("max_deactivation_share")),
        created_at=utc_moment(row.get("CreatedAt")),
        activated_at=utc_moment(row.get("ActivatedAt")),
        updated_at=utc_moment(row.get("UpdatedAt")),
        etag=etag_of(row) if getattr(row, "metadata", None) else None,
    )
