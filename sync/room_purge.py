"""Purge steps of the room sync for a deleted integration (see sync/purge.py): its Graph
subscriptions (removed at Graph first, so Graph stops calling us), then each asset with its
reservations and calendar state, then its sync log and dead letters. Each call removes one
asset's worth at most and may be repeated after a crash."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from graph import GraphError
from graph.subscriptions import delete_subscription
from sync.model import Integration, utc_now
from sync.purge import StepProgress

log = logging.getLogger(__name__)


@dataclass
class SubscriptionsStep:
    subscriptions: object
    access: object
    name: str = "graph-subscriptions"

    def purge(self, integration: Integration) -> StepProgress:
        links = self.subscriptions.of_integration(integration.id)
        if not links:
            return StepProgress(done=True)
        try:
            client = self.access.client_for(integration)
        except Exception as error:  # the tenant's credentials may be gone: ours go anyway
            log.info("purge of %s: Graph unreachable (%s); subscriptions expire on their own",
                     integration.id, type(error).__name__)
            client = None
        for link in links:
            if client is not None:
                try:
                    delete_subscription(client, link.subscription_id)
                except GraphError as error:
                    log.info("purge of %s: subscription %s not removed at Graph (%s)", integration.id,
                             link.subscription_id, error.code)
            self.subscriptions.delete(link.subscription_id)
        if client is not None:
            client.close()
        return StepProgress(done=True, removed=len(links))


@dataclass
class AssetsStep:
    assets: object
    reservations: object
    calendar_state: object
    name: str = "assets-and-reservations"

    def purge(self, integration: Integration) -> StepProgress:
        asset = next(iter(self.assets.list(integration.id)), None)
        if asset is None:
            self.assets.purge(integration.id)  # index rows left by a crash
            return StepProgress(done=True)
        removed = self.reservations.purge_asset(integration.id, asset.id)
        self.calendar_state.delete(integration.id, asset.id)
        self.assets.delete(asset)
        return StepProgress(done=False, removed=removed + 1)


@dataclass
class LogsStep:
    synclog: object
    deadletters: object
    name: str = "synclog-and-deadletters"

    def purge(self, integration: Integration) -> StepProgress:
        removed = self.synclog.purge(integration.id, now=utc_now(), days=60)
        removed += self.deadletters.purge(integration.id)
        return StepProgress(done=True, removed=removed)
