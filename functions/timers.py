"""Scheduled jobs. `user_sync_nightly` (USER_SYNC_SCHEDULE, NCRONTAB in UTC) asks for one user
sync per active integration through the user-sync queue, so each tenant runs in its own
invocation; parked integrations are skipped with one log line each."""
from __future__ import annotations

import logging

import azure.functions as func

from functions import context
from sync.users import schedule_user_syncs

log = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.function_name("user_sync_nightly")
@bp.timer_trigger(arg_name="timer", schedule="%USER_SYNC_SCHEDULE%", run_on_startup=False, use_monitor=True)
def user_sync_nightly(timer: func.TimerRequest) -> None:
    report = schedule_user_syncs(context.integrations_repo(), context.sync_requester())
    log.info("nightly user sync: %d integration(s) queued, %d skipped%s", len(report.requested),
             len(report.skipped), " (the schedule was past due)" if timer.past_due else "")
