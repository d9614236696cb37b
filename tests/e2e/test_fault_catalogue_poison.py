"""Fault catalogue (docs/fault-catalogue.md), queue poison through the local host: a message the
worker can never handle is tried exactly maxDequeueCount times, moved to `<queue>-poison` and
kept as a dead letter that outlives the poison queue's 7-day expiry; an encoding mismatch
between producer and trigger ends the same way.

The host runs with the app's host.json except for a zero retry visibility, so five attempts take
a moment instead of two minutes."""
from __future__ import annotations

import base64
import json
import logging
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from functions import room_context
from tests.support.polling import wait_for
from tests.support.room_host import start_room_host

ROOT = Path(__file__).resolve().parents[2]
QUEUE = room_context.RESYNC_QUEUE


@pytest.fixture(scope="module")
def host(graph_emulator, storage_connection_string, tmp_path_factory):
    config = json.loads((ROOT / "host.json").read_text())
    config["extensions"]["queues"]["visibilityTimeout"] = "00:00:00"
    host_json = tmp_path_factory.mktemp("poison-host") / "host.json"
    host_json.write_text(json.dumps(config))
    yield from start_room_host(graph_emulator, storage_connection_string, host_config=host_json,
                               queue_poll_seconds=0.1)


def _raw_queue(connection_string: str, name: str) -> QueueClient:
    """A client without an encode policy: it sends the text exactly as given."""
    client = QueueClient.from_connection_string(connection_string, name)
    try:
        client.create_queue()
    except ResourceExistsError:
        pass
    return client


def _letters_with(marker: str) -> list:
    return [letter for letter in room_context.deadletters().list() if marker in letter.message]


def _attempts(caplog, marker_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "devtools.localhost.queues" and marker_id in r.getMessage()]


# §6 item 15 (§7 rank 8) -----------------------------------------------------------------------------------

def test_fault_handler_failing_every_attempt_is_poisoned_after_exactly_max_dequeue_count_and_kept(
        host, storage_connection_string, caplog):
    """calendar-resync refuses a message naming no asset: attempts 1..5, then `-poison`, then a
    dead letter with the text intact, which stays when the poison message expires."""
    caplog.set_level(logging.INFO, logger="devtools.localhost.queues")
    marker = f"fault-{uuid.uuid4().hex}"
    text = json.dumps({"reason": marker})
    sent = _raw_queue(storage_connection_string, QUEUE).send_message(base64.b64encode(text.encode()).decode())

    (letter,) = wait_for(lambda: _letters_with(marker), timeout=30, interval=0.2, what="the dead letter")
    assert letter.queue == QUEUE and letter.message == text
    assert letter.error.startswith("moved to the poison queue after the host's retries; last error: ValueError: ")
    assert "names no integration and asset" in letter.error
    said = _attempts(caplog, sent.id)
    failed = [line for line in said if "failed on message" in line]
    assert [line.split("(attempt ")[1].split(")")[0] for line in failed] == [f"{n} of 5" for n in range(1, 6)]
    assert any("moving it to calendar-resync-poison" in line for line in said)
    # The poison queue's copy expires after 7 days (here: is cleared); the dead letter stays.
    poison = _raw_queue(storage_connection_string, f"{QUEUE}-poison")
    wait_for(lambda: poison.get_queue_properties().approximate_message_count == 0, timeout=20, interval=0.2,
             what="the poison handler to take its message")
    poison.clear_messages()
    assert [l.id for l in _letters_with(marker)] == [letter.id]


# §6 item 14 (§7 rank 14) ----------------------------------------------------------------------------------

def test_fault_raw_json_sent_without_base64_lands_in_poison_and_is_not_lost(host, storage_connection_string, caplog):
    """A producer that forgot the base64 the trigger expects: the trigger cannot decode the
    message, so after the host's attempts it sits in `-poison` with its text unchanged."""
    caplog.set_level(logging.INFO, logger="devtools.localhost.queues")
    marker = f"fault-{uuid.uuid4().hex}"
    text = json.dumps({"integration_id": marker, "asset_id": "a", "reason": "raw"})
    sent = _raw_queue(storage_connection_string, QUEUE).send_message(text)

    wait_for(lambda: any("moving it to calendar-resync-poison" in line for line in _attempts(caplog, sent.id)),
             timeout=30, interval=0.2, what="the move to the poison queue")
    failed = [line for line in _attempts(caplog, sent.id) if "failed on message" in line]
    assert len(failed) == 5

    def kept() -> bool:
        if _letters_with(marker):
            return True
        for name in (f"{QUEUE}-poison", f"{QUEUE}-poison-poison"):
            for message in _raw_queue(storage_connection_string, name).peek_messages(max_messages=32):
                if marker in message.content:
                    return True
        return False

    assert wait_for(kept, timeout=20, interval=0.2, what="the message kept somewhere an operator sees it")
