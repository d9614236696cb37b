"""Graph subscriptions of room calendars: subscribe, unsubscribe, renew, and answer lifecycle
events.

A subscription is made with a fresh random clientState (only its sha256 is stored), the
lifecycle URL, and the longest expiry Graph accepts (graph.subscriptions clamps when Graph
names a lower maximum). Creating one has no transactionId, so it is never blindly resent: after
an ambiguous failure the service lists the app's subscriptions and removes any it cannot
account for before reporting the failure. Every (re)creation is followed by a resync of the
room calendar, which catches up whatever changed while no subscription was listening.

`subscribed_at` marks where the room's history starts for us: the planner ignores meetings
created before it (import brings those in). So it is set once, when an asset starts being
subscribed (first subscribe, or subscribe after an unsubscribe, which forgets it), and kept by
every recreation (renewal 404, subscriptionRemoved, and an admin subscribing again an asset whose
subscription failed or is being replaced): the resync after a recreation must see the meetings
made while no subscription listened, and those were created after the original start.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from graph import GraphError, NotFound, Throttled
from graph.subscriptions import (
    create_subscription, delete_subscription, list_subscriptions, reauthorize_subscription, renew_subscription,
)
from graph.timestamps import parse_graph_time
from sync.booking_model import SUBSCRIBED, SUBSCRIPTION_ERROR, UNSUBSCRIBED, Asset, Subscription
from sync.model import Integration, utc_now
from sync.store.assets_repo import AssetsRepo, SubscriptionLink, SubscriptionsRepo
from sync.store.errors import ConflictError
from sync.validation import Problem
from sync.webhook import client_state_hash

log = logging.getLogger(__name__)

NOTIFICATION_PATH = "/api/microsoft_graph/notifications/notification_url"
LIFECYCLE_PATH = "/api/microsoft_graph/notifications/lifecycle_url"
CHANGE_TYPES = "created,updated,deleted"
# Events created this long before the subscription still count as after it: our clock and
# Exchange's may differ a little, and a meeting made while subscribing must not be lost.
CLOCK_SKEW = timedelta(minutes=2)
# Outlook subscriptions live at most 7 days; renew once less than this is left.
RENEW_WHEN_LEFT = timedelta(days=3)


def resource_of(mailbox: str) -> str:
    return f"users/{mailbox}/events"


class SubscriptionService:
    def __init__(self, *, assets: AssetsRepo, subscriptions: SubscriptionsRepo, integrations, access,
                 public_base_url: str, request_resync: Callable[[str, str, str], None],
                 forget: Callable[[str], None] = lambda subscription_id: None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.assets = assets
        self.subscriptions = subscriptions
        self.integrations = integrations
        self.access = access
        self.base = public_base_url.rstrip("/")
        self.request_resync = request_resync
        self.forget = forget
        self.clock = clock

    # API ----------------------------------------------------------------------------------------
    def subscribe(self, integration: Integration, asset: Asset) -> dict[str, Any]:
        """(Re)creates the asset's subscription; the old one, if any, is removed at Graph. An asset
        still holding a subscription start keeps it (see the module docstring)."""
        client = self.access.client_for(integration)
        try:
            started = self._history_start(asset)
            try:
                try:
                    asset = self._create(client, integration, asset, started)
                except GraphError as error:
                    if error.status != 409 or not asset.subscription.id:
                        raise
                    # Graph holds one subscription per calendar and change types, so replacing ours
                    # means removing it first; the resync requested below covers the gap.
                    delete_subscription(client, asset.subscription.id)
                    asset = self._create(client, integration, asset, started)
            except Throttled:
                raise
            except GraphError as error:
                self._record_error(asset, f"Graph refused the subscription: {error.code}: {error.message}"[:500])
                raise Problem(502, "subscription_failed", f"Graph refused the subscription ({error.code}): "
                              f"{error.message}"[:400]) from None
        finally:
            client.close()
        self.request_resync(asset.integration_id, asset.id, "subscribed")
        return asset.subscription.view(self.clock())

    def unsubscribe(self, integration: Integration, asset: Asset) -> dict[str, Any]:
        old = asset.subscription.id
        if old:
            client = self.access.client_for(integration)
            try:
                delete_subscription(client, old)
            finally:
                client.close()
            self.subscriptions.delete(old)
            self.forget(old)
        saved = self._save(asset, Subscription())
        return saved.subscription.view(self.clock())

    # timers and lifecycle -----------------------------------------------------------------------
    def renew_due(self) -> dict[str, int]:
        """Renews every subscription with less than RENEW_WHEN_LEFT to live; recreates the gone."""
        counts = {"renewed": 0, "recreated": 0, "failed": 0, "skipped": 0}
        now = self.clock()
        for link in list(self.subscriptions.all()):
            if link.expires_at is not None and link.expires_at - now > RENEW_WHEN_LEFT:
                continue
            try:
                counts[self.renew(link)] += 1
            except Exception as error:  # one room's trouble must not stop the others
                counts["failed"] += 1
                log.warning("renewal of subscription %s (asset %s) failed: %s", link.subscription_id,
                            link.asset_id, type(error).__name__)
        return counts

    def renew(self, link: SubscriptionLink) -> str:
        found = self._owner(link)
        if found is None:
            self.subscriptions.delete(link.subscription_id)
            return "skipped"
        integration, asset = found
        client = self.access.client_for(integration)
        try:
            try:
                answer = renew_subscription(client, link.subscription_id, resource=resource_of(asset.mailbox))
            except NotFound:
                self._create(client, integration, asset, self._history_start(asset))
                outcome = "recreated"
            else:
                expires = parse_graph_time(answer["expirationDateTime"])
                self.subscriptions.save(replace(link, expires_at=expires))
                self.forget(link.subscription_id)
                self._save(asset, replace(asset.subscription, expires_at=expires, last_error=None))
                return "renewed"
        finally:
            client.close()
        self.request_resync(asset.integration_id, asset.id, "recreated")
        return outcome

    def on_lifecycle(self, integration_id: str, subscription_id: str, event: str) -> str:
        """Acts only when the subscription belongs to the integration the message names: a message
        pairing one tenant with another's subscription id changes nothing."""
        link = self.subscriptions.get(subscription_id)
        if link is None:
            return "unknown subscription"
        if link.integration_id != integration_id:
            log.warning("lifecycle %s refused: subscription %s is not integration %s's", event, subscription_id,
                        integration_id)
            return "not this integration's subscription"
        found = self._owner(link)
        if found is None:
            return "asset gone"
        integration, asset = found
        if event == "missed":
            self.request_resync(asset.integration_id, asset.id, "missed")
            return "resync requested"
        client = self.access.client_for(integration)
        try:
            if event == "reauthorizationRequired":
                try:
                    reauthorize_subscription(client, subscription_id)
                    return "reauthorized"
                except NotFound:
                    pass
            self._create(client, integration, asset, self._history_start(asset))
        finally:
            client.close()
        self.request_resync(asset.integration_id, asset.id, "recreated")
        return "recreated"

    # internals ----------------------------------------------------------------------------------
    def _owner(self, link: SubscriptionLink) -> tuple[Integration, Asset] | None:
        integration = self.integrations.get(link.integration_id)
        asset = self.assets.get_in(link.integration_id, link.asset_id)
        if integration is None or asset is None or not integration.is_active:
            return None
        if asset.subscription.id != link.subscription_id:
            return None  # superseded by a newer subscription of the asset
        return integration, asset

    def _history_start(self, asset: Asset) -> datetime:
        """The asset's original subscription start, or now (less the skew) for a fresh start."""
        return asset.subscription.subscribed_at or self.clock() - CLOCK_SKEW

    def _create(self, client, integration: Integration, asset: Asset, started: datetime) -> Asset:
        client_state = secrets.token_urlsafe(48)
        resource = resource_of(asset.mailbox)
        try:
            answer = create_subscription(client, resource=resource, change_type=CHANGE_TYPES,
                                         notification_url=self.base + NOTIFICATION_PATH,
                                         lifecycle_notification_url=self.base + LIFECYCLE_PATH,
                                         client_state=client_state)
        except GraphError as error:
            if error.status >= 500 or error.status == 0:
                self._remove_strays(client, resource, keep=asset.subscription.id)
            raise
        subscription_id = str(answer["id"]).lower()
        expires = parse_graph_time(answer["expirationDateTime"])
        link = SubscriptionLink(subscription_id=subscription_id, integration_id=integration.id,
                                tenant_id=integration.tenant_id, asset_id=asset.id, mailbox=asset.mailbox,
                                client_state_hash=client_state_hash(client_state), expires_at=expires)
        self.subscriptions.save(link)
        old = asset.subscription.id
        subscription = Subscription(state=SUBSCRIBED, id=subscription_id, expires_at=expires, subscribed_at=started,
                                    client_state_hash=link.client_state_hash,
                                    last_notification_at=asset.subscription.last_notification_at)
        saved = self._save(asset, subscription)
        if old and old != subscription_id:
            try:
                delete_subscription(client, old)
            except GraphError:
                log.info("old subscription %s of asset %s could not be removed at Graph", old, asset.id)
            self.subscriptions.delete(old)
            self.forget(old)
        log.info("asset %s subscribed (%s, expires %s)", asset.id, subscription_id, expires.isoformat())
        return saved

    def _remove_strays(self, client, resource: str, keep: str | None) -> None:
        """After a create that may have been applied: delete subscriptions of this resource we
        do not know, so an unknown one never keeps sending to us."""
        try:
            for sub in list_subscriptions(client):
                if (str(sub.get("resource", "")).lower() == resource.lower() and sub.get("id") != keep
                        and self.subscriptions.get(str(sub.get("id")).lower()) is None):
                    delete_subscription(client, sub["id"])
        except GraphError:
            log.info("could not list subscriptions to clean up after a failed create of %s", resource)

    def _save(self, asset: Asset, subscription: Subscription) -> Asset:
        for _ in range(5):
            try:
                return self.assets.update(replace(asset, subscription=subscription, updated_at=self.clock()))
            except ConflictError:
                fresh = self.assets.get_in(asset.integration_id, asset.id)
                if fresh is None:
                    return asset
                asset = fresh
        raise ConflictError(ConflictError.MODIFIED, table="assets")

    def _record_error(self, asset: Asset, message: str) -> None:
        now = self.clock()
        state = asset.subscription.state if asset.subscription.id else SUBSCRIPTION_ERROR
        self._save(asset, replace(asset.subscription, state=state or UNSUBSCRIBED, last_error=message,
                                  last_error_at=now))

    def touch(self, integration_id: str, asset_id: str, at: datetime) -> None:
        """Records the last notification (at most once a minute per asset, to spare writes)."""
        asset = self.assets.get_in(integration_id, asset_id)
        if asset is None:
            return
        last = asset.subscription.last_notification_at
        if last is not None and at - last < timedelta(minutes=1):
            return
        try:
            self.assets.update(replace(asset, subscription=replace(asset.subscription, last_notification_at=at)))
        except ConflictError:
            pass
