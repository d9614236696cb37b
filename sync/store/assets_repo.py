"""The `assets` and `subscriptions` tables.

`assets`, partition = integration id:

| RowKey | row |
|---|---|
| `a!<asset id>` | the asset, with its subscription's state |
| `m!<encode_id(mailbox)>` | mailbox index: one asset per room mailbox per integration |

plus partition `~ids`, RowKey = asset id -> IntegrationId, so `/api/assets/{id}` finds the asset
with two point reads and no scan. The asset and its mailbox row commit in one transaction; the id
row is written first (a dangling id row is harmless: it leads to no asset).

`subscriptions`, partition `subscriptions`, RowKey = the Graph subscription id: integration,
tenant, asset, mailbox and the sha256 of the clientState. The webhook reads it (cached) to
check each notification; the renewal timer scans this one partition.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterator, Mapping

from sync.booking_model import Asset, Subscription
from sync.store.catalog import Store
from sync.store.errors import TransactionConflictError
from sync.store.keys import compose, encode_id, prefix_range
from sync.store.tables import REPLACE, etag_of, utc_moment

ASSETS = "assets"
SUBSCRIPTIONS = "subscriptions"
SUBSCRIPTIONS_PARTITION = "subscriptions"
ID_PARTITION = "~ids"


class MailboxTaken(Exception):
    """Another asset of the integration is already linked to this mailbox."""


def asset_row_key(asset_id: str) -> str:
    return compose("a", asset_id)


def mailbox_row_key(mailbox: str) -> str:
    return compose("m", encode_id(mailbox.lower()))


def new_asset_id() -> str:
    return uuid.uuid4().hex


class AssetsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(ASSETS)

    def get(self, asset_id: str) -> Asset | None:
        """The asset by id alone (the API's view), or None."""
        pointer = self.table.get(ID_PARTITION, asset_id)
        if pointer is None:
            return None
        return self.get_in(pointer["IntegrationId"], asset_id)

    def get_in(self, integration_id: str, asset_id: str) -> Asset | None:
        row = self.table.get(integration_id, asset_row_key(asset_id))
        return from_entity(row) if row is not None else None

    def by_mailbox(self, integration_id: str, mailbox: str) -> Asset | None:
        pointer = self.table.get(integration_id, mailbox_row_key(mailbox))
        return self.get_in(integration_id, pointer["AssetId"]) if pointer else None

    def list(self, integration_id: str) -> Iterator[Asset]:
        low, high = prefix_range("a")
        for row in self.table.query("RowKey ge @low and RowKey lt @high", {"low": low, "high": high},
                                    partition=integration_id):
            yield from_entity(row)

    def insert(self, asset: Asset) -> Asset:
        self.table.upsert({"PartitionKey": ID_PARTITION, "RowKey": asset.id, "IntegrationId": asset.integration_id})
        operations = [("create", to_entity(asset)),
                      ("create", {"PartitionKey": asset.integration_id, "RowKey": mailbox_row_key(asset.mailbox),
                                  "AssetId": asset.id})]
        try:
            self.table.transact(operations, atomic=True)
        except TransactionConflictError as conflict:
            self.table.delete(ID_PARTITION, asset.id)
            if conflict.index == 1:
                raise MailboxTaken(asset.mailbox) from None
            raise
        return self.get_in(asset.integration_id, asset.id)

    def update(self, asset: Asset) -> Asset:
        """ETag-guarded replace (ConflictError when someone changed the asset meanwhile)."""
        if not asset.etag:
            raise ValueError("update an asset read from the table (it carries the row's ETag)")
        etag = self.table.update(to_entity(asset), asset.etag, mode=REPLACE)
        return replace(asset, etag=etag)

    def delete(self, asset: Asset) -> None:
        operations = [("delete", {"PartitionKey": asset.integration_id, "RowKey": asset_row_key(asset.id)},
                       {"etag": asset.etag}),
                      ("delete", {"PartitionKey": asset.integration_id, "RowKey": mailbox_row_key(asset.mailbox)})]
        self.table.transact(operations, atomic=True)
        self.table.delete(ID_PARTITION, asset.id)

    def purge(self, integration_id: str) -> int:
        """Removes every asset row of an integration (its id rows too); resumable."""
        rows = list(self.table.query(partition=integration_id, select=["PartitionKey", "RowKey", "AssetId"]))
        asset_ids = [row["RowKey"].split("!", 1)[1] for row in rows if row["RowKey"].startswith("a!")]
        for asset_id in asset_ids:
            self.table.delete(ID_PARTITION, asset_id)
        if rows:
            self.table.transact([("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]})
                                 for r in rows])
        return len(asset_ids)


@dataclass(frozen=True)
class SubscriptionLink:
    """What the webhook needs to trust a notification, by subscription id."""

    subscription_id: str
    integration_id: str
    tenant_id: str
    asset_id: str
    mailbox: str
    client_state_hash: str
    expires_at: datetime | None
    etag: str | None = None


class SubscriptionsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(SUBSCRIPTIONS)

    def get(self, subscription_id: str) -> SubscriptionLink | None:
        row = self.table.get(SUBSCRIPTIONS_PARTITION, subscription_id)
        return _link(row) if row is not None else None

    def all(self) -> Iterator[SubscriptionLink]:
        for row in self.table.query(partition=SUBSCRIPTIONS_PARTITION):
            yield _link(row)

    def save(self, link: SubscriptionLink) -> None:
        self.table.upsert({"PartitionKey": SUBSCRIPTIONS_PARTITION, "RowKey": link.subscription_id,
                           "IntegrationId": link.integration_id, "TenantId": link.tenant_id,
                           "AssetId": link.asset_id, "Mailbox": link.mailbox,
                           "ClientStateHash": link.client_state_hash, "ExpiresAt": link.expires_at}, mode=REPLACE)

    def delete(self, subscription_id: str) -> None:
        self.table.delete(SUBSCRIPTIONS_PARTITION, subscription_id)

    def of_integration(self, integration_id: str) -> list[SubscriptionLink]:
        return [link for link in self.all() if link.integration_id == integration_id]


def _link(row: Mapping[str, Any]) -> SubscriptionLink:
    return SubscriptionLink(subscription_id=row["RowKey"], integration_id=row["IntegrationId"],
                            tenant_id=row["TenantId"], asset_id=row["AssetId"], mailbox=row["Mailbox"],
                            client_state_hash=row["ClientStateHash"], expires_at=utc_moment(row.get("ExpiresAt")),
                            etag=etag_of(row))


def to_entity(asset: Asset) -> dict[str, Any]:
    sub = asset.subscription
    entity = {
        "PartitionKey": asset.integration_id, "RowKey": asset_row_key(asset.id), "Name": asset.name,
        "Category": asset.category, "Mailbox": asset.mailbox, "TimeZone": asset.time_zone,
        "Capacity": asset.capacity, "MaxDurationMinutes": asset.max_duration_minutes,
        "SubscriptionState": sub.state, "SubscriptionId": sub.id, "SubscriptionExpiresAt": sub.expires_at,
        "SubscribedAt": sub.subscribed_at, "ClientStateHash": sub.client_state_hash,
        "LastNotificationAt": sub.last_notification_at, "LastError": sub.last_error,
        "LastErrorAt": sub.last_error_at, "CreatedAt": asset.created_at, "UpdatedAt": asset.updated_at,
    }
    return {name: value for name, value in entity.items() if value is not None}


def from_entity(row: Mapping[str, Any]) -> Asset:
    subscription = Subscription(
        state=row.get("SubscriptionState") or "unsubscribed", id=row.get("SubscriptionId"),
        expires_at=utc_moment(row.get("SubscriptionExpiresAt")), subscribed_at=utc_moment(row.get("SubscribedAt")),
        client_state_hash=row.get("ClientStateHash"),
        last_notification_at=utc_moment(row.get("LastNotificationAt")), last_error=row.get("LastError"),
        last_error_at=utc_moment(row.get("LastErrorAt")))
    capacity = row.get("Capacity")
    max_minutes = row.get("MaxDurationMinutes")
    return Asset(id=row["RowKey"].split("!", 1)[1], integration_id=row["PartitionKey"], name=row["Name"],
                 category=row.get("Category") or "room", mailbox=row["Mailbox"], time_zone=row.get("TimeZone") or "UTC",
                 capacity=int(capacity) if capacity is not None else None,
                 max_duration_minutes=int(max_minutes) if max_minutes is not None else None,
                 subscription=subscription, created_at=utc_moment(row["CreatedAt"]),
                 updated_at=utc_moment(row["UpdatedAt"]), etag=etag_of(row))
