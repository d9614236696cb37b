"""Composition root of the room sync: builds its services once per worker process from the
shared pieces in functions/context.py (settings, store, Graph access, queues)."""
from __future__ import annotations

import os

from functions import context
from functions.context import _once

NOTIFICATIONS_QUEUE = "graph-notifications"
LIFECYCLE_QUEUE = "graph-lifecycle"
RESYNC_QUEUE = "calendar-resync"


def horizon_days() -> int:
    return int(getattr(context.settings(), "recurrence_horizon_days", None) or os.environ.get(
        "RECURRENCE_HORIZON_DAYS") or 90)


def publisher(queue: str):
    def build():
        from sync.events_out import QueuePublisher

        return QueuePublisher(context.queue_service(), queue)

    return _once(f"publisher:{queue}", build)


def assets_repo():
    from sync.store.assets_repo import AssetsRepo

    return _once("assets_repo", lambda: AssetsRepo(context.store()))


def subscriptions_repo():
    from sync.store.assets_repo import SubscriptionsRepo

    return _once("subscriptions_repo", lambda: SubscriptionsRepo(context.store()))


def reservations_repo():
    from sync.store.reservations_repo import ReservationsRepo

    return _once("reservations_repo", lambda: ReservationsRepo(context.store()))


def synclog():
    from sync.store.synclog_repo import SyncLog

    return _once("synclog", lambda: SyncLog(context.store()))


def deadletters():
    from sync.store.deadletters_repo import DeadLettersRepo

    return _once("deadletters", lambda: DeadLettersRepo(context.store()))


def live_integration():
    from sync.live import live_integration_reader

    return _once("live_integration", lambda: live_integration_reader(context.integrations_repo()))


def subscription_cache():
    from sync.webhook import SubscriptionCache

    return _once("subscription_cache", lambda: SubscriptionCache(subscriptions_repo().get))


def asset_service():
    from sync.assets import AssetService

    return _once("asset_service", lambda: AssetService(
        assets=assets_repo(), integrations=context.integrations_repo(), access=context.graph_access(),
        live_integration=live_integration()))


def request_resync(integration_id: str, asset_id: str, reason: str) -> None:
    publisher(RESYNC_QUEUE).send({"integration_id": integration_id, "asset_id": asset_id, "reason": reason})


def subscription_service():
    from sync.subscriptions import SubscriptionService

    return _once("subscription_service", lambda: SubscriptionService(
        assets=assets_repo(), subscriptions=subscriptions_repo(), integrations=context.integrations_repo(),
        access=context.graph_access(), public_base_url=context.settings().public_base_url,
        request_resync=request_resync, forget=subscription_cache().forget))


def reservation_outbox():
    from sync.reservation_events import RESERVATION_EVENTS_QUEUE, ReservationEventOutbox

    return _once("reservation_outbox", lambda: ReservationEventOutbox(reservations_repo(),
                                                                      publisher(RESERVATION_EVENTS_QUEUE)))


def inbound():
    from sync.inbound import InboundSync

    return _once("inbound", lambda: InboundSync(
        integrations=context.integrations_repo(), assets=assets_repo(), reservations=reservations_repo(),
        users=context.users_repo(), access=context.graph_access(), outbox=reservation_outbox(),
        synclog=synclog(), horizon_days=horizon_days()))


def resync():
    from sync.resync import CalendarResync

    return _once("resync", lambda: CalendarResync(inbound=inbound(), state=calendar_state(),
                                                  horizon_days=horizon_days()))


def calendar_state():
    from sync.resync import CalendarStateRepo

    return _once("calendar_state", lambda: CalendarStateRepo(context.store()))


def resync_schedule():
    from sync.resync import ResyncSchedule

    return _once("resync_schedule", lambda: ResyncSchedule(subscriptions=subscriptions_repo(),
                                                           state=calendar_state(), request=request_resync))


def imports():
    from sync.imports import BookingImport

    return _once("imports", lambda: BookingImport(inbound=inbound(), reservations=reservations_repo()))


def reservation_reads():
    from sync.model import utc_now
    from sync.reservation_reads import ReservationReads

    return _once("reservation_reads", lambda: ReservationReads(
        reservations=reservations_repo(), assets=asset_service(), live_integration=live_integration(),
        users=context.users_repo(), synclog=synclog(), clock=utc_now))
