"""The error of each failed attempt of a queue message, kept for its dead letter.

The Functions host retries a message that raises and, after maxDequeueCount attempts, moves its
text to `<queue>-poison`, dropping the exception. `remembers_failures(queue)` notes the error
(type and redacted message, one line) under a hash of the message text, and the dead-letter
keeper takes it back, so a dead letter says why it failed, not only that it did.
"""
from __future__ import annotations

import functools
import logging
from typing import Callable

import azure.functions as func

from sync.model import utc_now
from sync.redaction import redact

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 500


def describe(error: BaseException) -> str:
    """One line naming the error; storage and token credentials are blanked."""
    text = " ".join(str(error).split())
    return redact(f"{type(error).__name__}: {text}" if text else type(error).__name__)[:MAX_ERROR_TEXT]


def remembers_failures(queue: str) -> Callable:
    def wrap(handler: Callable[[func.QueueMessage], None]) -> Callable[[func.QueueMessage], None]:
        @functools.wraps(handler)
        def run(message: func.QueueMessage) -> None:
            try:
                handler(message)
            except Exception as error:
                _note(queue, message, error)
                raise
        return run
    return wrap


def _note(queue: str, message: func.QueueMessage, error: BaseException) -> None:
    from functions import room_context

    try:
        text = message.get_body().decode("utf-8", errors="replace")
        room_context.deadletters().note_failure(queue, text, describe(error), utc_now())
    except Exception:  # noqa: BLE001 -- the host still retries; the dead letter then names no error
        log.exception("the error of a failed %s message could not be noted", queue)
