"""Composition of the booking side (platform -> Outlook): the services behind
functions/reservations_api.py and functions/booking_workers.py, built once per process on
first use from the shared clients of functions.context (and forgotten by its reset())."""
from __future__ import annotations

from functions import context


def booking_settings():
    from sync.booking_settings import load_booking_settings

    return context._once("booking_settings", load_booking_settings)


def _repo(name: str, build):
    return context._once(name, build)


def reservations_repo():
    from sync.store.reservations_repo import ReservationsRepo

    return _repo("reservations_repo", lambda: ReservationsRepo(context.store()))


def assets_repo():
    from sync.store.assets_repo import AssetsRepo

    return _repo("booking_assets_repo", lambda: AssetsRepo(context.store()))


def series_repo():
    from sync.store.series_repo import SeriesRepo

    return _repo("series_repo", lambda: SeriesRepo(context.store()))


def synclog():
    from sync.store.synclog_repo import SyncLog

    return _repo("booking_synclog", lambda: SyncLog(context.store()))


def booking_queue():
    def build():
        from sync.booking_queue import BOOKING_CHANGES_QUEUE, BookingQueue
        from sync.events_out import QueuePublisher

        return BookingQueue(QueuePublisher(context.queue_service(), BOOKING_CHANGES_QUEUE))

    return context._once("booking_queue", build)


def reservation_events():
    def build():
        from sync.events_out import QueuePublisher
        from sync.reservation_events import RESERVATION_EVENTS_QUEUE, ReservationEventOutbox

        return ReservationEventOutbox(reservations_repo(), QueuePublisher(context.queue_service(),
                                                                          RESERVATION_EVENTS_QUEUE))

    return context._once("booking_reservation_events", build)


def booking_service():
    def build():
        from sync.reservations import BookingService

        return BookingService(assets=assets_repo(), users=context.users_repo(), reservations=reservations_repo(),
                              series=series_repo(), queue=booking_queue(), events=reservation_events(),
                              synclog=synclog(), settings=booking_settings())

    return context._once("booking_service", build)


def outbound_worker():
    def build():
        from sync.outbound import OutboundWorker

        return OutboundWorker(reservations=reservations_repo(), assets=assets_repo(),
                              integrations=context.integrations_repo(), access=context.graph_access(),
                              queue=booking_queue(), events=reservation_events(), synclog=synclog())

    return context._once("outbound_worker", build)


def series_filler():
    def build():
        from sync.series import SeriesFiller

        return SeriesFiller(series=series_repo(), reservations=reservations_repo(), assets=assets_repo(),
                            integrations=context.integrations_repo(), worker=outbound_worker(), synclog=synclog(),
                            settings=booking_settings())

    return context._once("series_filler", build)


def leaver_releaser():
    def build():
        from sync.leavers import LeaverReleaser

        return LeaverReleaser(users=context.users_repo(), integrations=context.integrations_repo(),
                              assets=assets_repo(), reservations=reservations_repo(), series=series_repo(),
                              bookings=booking_service(), access=context.graph_access(), synclog=synclog())

    return context._once("leaver_releaser", build)
