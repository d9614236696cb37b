"""Queue-triggered workers. `user-sync`: one message = one user sync of one integration.
`integration-purge`: one message = (a slice of) the purge of one deleted integration.

A message that is not a valid request is refused with an exception, so after the host's
retries it lands in the poison queue with its text intact. Parked integrations, the guard and
unknown integrations end normally (the outcome is in the status and the logs); failures Graph
or Entra heal by themselves go back on the queue with a delay; only storage trouble and the
unexpected raise. A purge that stops part way queues its own continuation; one that raises is
retried by the host and resumes where it stopped.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from functions import context
from functions.failures import remembers_failures
from sync.purge import PURGE_QUEUE, purge_request_from_message
from sync import logcontext
from sync.users import USER_SYNC_QUEUE, SyncRequest

log = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.function_name("user_sync_worker")
@bp.queue_trigger(arg_name="message", queue_name=USER_SYNC_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(USER_SYNC_QUEUE)
def user_sync_worker(message: func.QueueMessage) -> None:
    try:
        request = SyncRequest.from_message(json.loads(message.get_body()))
    except (ValueError, UnicodeDecodeError) as problem:
        log.error("user-sync message %s refused: %s", message.id, problem)
        raise ValueError(f"invalid user-sync message: {problem}") from None
    with logcontext.bind(integration_id=logcontext.safe_id(request.integration_id),
                         correlation_id=logcontext.safe_id(request.run_id)):
        report = context.user_sync().run(request)
        log.info("user sync %s for integration %s: %s", report.run_id, report.integration_id, report.outcome)


@bp.function_name("integration_purge_worker")
@bp.queue_trigger(arg_name="message", queue_name=PURGE_QUEUE, connection="AzureWebJobsStorage")
@remembers_failures(PURGE_QUEUE)
def integration_purge_worker(message: func.QueueMessage) -> None:
    with logcontext.bind(correlation_id=logcontext.correlation_of_message(None, message.id)):
        try:
            integration_id = purge_request_from_message(json.loads(message.get_body()))
        except (ValueError, UnicodeDecodeError) as problem:
            log.error("integration-purge message %s refused: %s", message.id, problem)
            raise ValueError(f"invalid integration-purge message: {problem}") from None
        with logcontext.bind(integration_id=logcontext.safe_id(integration_id)):
            report = context.integration_purge().run(integration_id)
            log.info("purge of integration %s: %s", report.integration_id, report.outcome)
