"""Queue and timer triggers of the booking side.

- `booking_changes_worker` (`booking-changes`): one reservation to bring to Outlook, or one
  series to fill to its horizon.
- `leaver_releases_worker` (`leaver-releases`): the user sync deactivated a person; release
  their future bookings.
- `booking_sweeper` (BOOKING_SWEEP_SCHEDULE, default every 5 minutes, UTC): re-queues changes
  a crash left behind, sends stranded reservation events.
- `recurrence_nightly` (RECURRENCE_SCHEDULE, UTC): extends every open series to its horizon.

A message that is not valid is refused with an exception (the poison queue keeps its text).
The sweep schedule is read when the app is indexed, so it needs no entry in the app settings.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from functions import booking_context, context
from functions.failures import remembers_failures
from sync import logcontext
from sync.booking_queue import BOOKING_CHANGES_QUEUE, LEAVER_RELEASES_QUEUE, BadMessage, BookingChange, LeaverRelease
from sync.booking_settings import load_booking_settings
from sync.booking_sweeper import sweep
from sync.model import utc_now

log = logging.getLogger(__name__)

bp = func.Blueprint()


def _parse(message: func.QueueMessage, kind):
    try:
        return kind.from_message(json.loads(message.get_body()))
    except (ValueError, UnicodeDecodeError) as problem:
        log.error("%s message %s refused: %s", kind.__name__, message.id, problem)
        raise BadMessage(f"invalid message: {problem}") from None


@bp.function_name("booking_changes_worker")
@bp.queue_trigger(arg_name="message", queue_name=BOOKING_CHANGES_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(BOOKING_CHANGES_QUEUE)
def booking_changes_worker(message: func.QueueMessage) -> None:
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(None, message.id)):
        change = _parse(message, BookingChange)
        with logcontext.bind(integration_id=logcontext.safe_id(change.integration_id),
                             asset_id=logcontext.safe_id(change.asset_id),
                             reservation_id=logcontext.safe_id(change.reservation_id)):
            _bring_to_outlook(change)


def _bring_to_outlook(change: BookingChange) -> None:
    if change.series_id:
        report = booking_context.series_filler().fill_one(change.integration_id, change.series_id)
        log.info("series %s: %d occurrences materialised, %d created", change.series_id, report.materialized,
                 report.created)
        return
    outcome = booking_context.outbound_worker().handle(change)
    if change.answer_ids:
        log.info("rooms' answers for %d reservation(s): %s %s", len(change.answer_ids), outcome.decision,
                 outcome.detail)
    else:
        log.info("reservation %s: %s", change.reservation_id, outcome.decision)


@bp.function_name("leaver_releases_worker")
@bp.queue_trigger(arg_name="message", queue_name=LEAVER_RELEASES_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(LEAVER_RELEASES_QUEUE)
def leaver_releases_worker(message: func.QueueMessage) -> None:
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(None, message.id)):
        release = _parse(message, LeaverRelease)
        with logcontext.bind(integration_id=logcontext.safe_id(release.integration_id)):
            report = booking_context.leaver_releaser().release_leaver(release.integration_id, release.user_id)
            log.info("leaver %s: %s", release.user_id, report.outcome)


@bp.function_name("booking_sweeper")
@bp.timer_trigger(arg_name="timer", schedule=load_booking_settings().sweep_schedule, run_on_startup=False,
                  use_monitor=True)
def booking_sweeper(timer: func.TimerRequest) -> None:
    from datetime import timedelta

    settings = booking_context.booking_settings()
    sweep(booking_context.reservations_repo(), booking_context.booking_queue(), booking_context.reservation_events(),
          now=utc_now(), older_than=timedelta(seconds=settings.sweep_after_seconds))


@bp.function_name("recurrence_nightly")
@bp.timer_trigger(arg_name="timer", schedule="%RECURRENCE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def recurrence_nightly(timer: func.TimerRequest) -> None:
    context.settings()
    booking_context.series_filler().nightly()
