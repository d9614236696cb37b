"""A dead letter says why its message failed: each failed attempt of a queue worker notes its
error under a hash of the message text, the dead-letter keeper takes the last one back, and
notes are never listed as dead letters. The workers and the keeper are the app's own functions,
invoked with real queue messages against Azurite."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.functions.queue import QueueMessage

from functions import room_context
from functions.failures import describe
from sync.store.deadletters_repo import DeadLettersRepo
from tests.integration.test_status import app, call  # noqa: F401 -- the app fixture and its caller


def _message(text: str, dequeue_count: int = 1) -> QueueMessage:
    """A message as the host hands it to a trigger (the binding's type, which has a dequeue count)."""
    return QueueMessage(id=uuid.uuid4().hex, body=text.encode(), dequeue_count=dequeue_count)


def test_the_dead_letter_names_the_error_of_the_last_failed_attempt(app):  # noqa: F811
    integration_id = str(uuid.uuid4())
    text = json.dumps({"integration_id": integration_id, "reason": f"no asset {uuid.uuid4().hex}"})
    worker = app["calendar_resync_worker"].get_user_function()
    for _ in range(2):
        with pytest.raises(ValueError, match="names no integration and asset"):
            worker(_message(text))

    app["deadletter_calendar_resync"].get_user_function()(_message(text, dequeue_count=5))
    (letter,) = list(room_context.deadletters().list(integration_id))
    assert letter.error.startswith("moved to the poison queue after the host's retries; last error: ValueError: ")
    assert "names no integration and asset" in letter.error and letter.message == text
    # the note was taken: a second copy of the poison message names no error
    app["deadletter_calendar_resync"].get_user_function()(_message(text, dequeue_count=5))
    assert any(d.error.endswith("last error: not recorded") for d in room_context.deadletters().list(integration_id))


def test_every_queue_worker_notes_its_failures(app):  # noqa: F811
    """A new queue worker without the note would leave its dead letters without a reason."""
    workers = {name: function for name, function in app.items()
               if any(b.type == "queueTrigger" and not b.queue_name.endswith("-poison")
                      for b in function.get_bindings())}
    assert len(workers) == 7, sorted(workers)
    for name, function in workers.items():
        assert getattr(function.get_user_function(), "__wrapped__", None) is not None, name


def test_failure_notes_are_not_dead_letters_and_old_ones_are_forgotten(app):  # noqa: F811
    letters: DeadLettersRepo = room_context.deadletters()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    letters.note_failure(queue, "old message", "TimeoutError: old", long_ago)
    letters.note_failure(queue, "new message", "TimeoutError: new", datetime.now(timezone.utc))

    assert all(not d.queue.startswith("q-") for d in letters.list())
    assert letters.get(f"failure!{queue}~0") is None
    assert letters.forget_failures(datetime.now(timezone.utc) - timedelta(days=1)) >= 1
    assert letters.take_failure(queue, "old message") is None
    assert letters.take_failure(queue, "new message") == "TimeoutError: new"
    assert letters.take_failure(queue, "new message") is None


def test_an_error_is_one_line_without_storage_credentials():
    error = RuntimeError("could not reach\nDefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;x")
    said = describe(error)
    assert "\n" not in said and "c2VjcmV0" not in said and said.startswith("RuntimeError: could not reach")
    assert describe(KeyError()) == "KeyError"
