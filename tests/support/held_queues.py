"""A local host that serves the whole app except the workers of some queues, so what the
webhooks (or anything else) put there stays on the queue for a test to read; and helpers to
take those messages and to hand one to the app's real worker function.

Leaving a worker out is what an operator does with `AzureWebJobs.<function>.Disabled`: the
functions that run are the app's own, unchanged."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError

from devtools.localhost import LocalHost
from sync.store import StorageLocation, queue_service
from sync.store.connection import queue_client
from tests.support.room_host import start_room_host


class AppWithout:
    """The app's functions minus the named ones (what the host reads through get_functions)."""

    def __init__(self, app, left_out: set[str]) -> None:
        self.app = app
        self.left_out = left_out
        self.functions_bindings = None

    def get_functions(self):
        self.app.functions_bindings = None  # a second reading is not a duplicate registration
        return [f for f in self.app.get_functions() if f.get_function_name() not in self.left_out]

    def worker(self, name: str):
        self.app.functions_bindings = None
        (found,) = [f for f in self.app.get_functions() if f.get_function_name() == name]
        return found.get_user_function()


def start_host_without(graph_emulator, storage_connection_string: str, left_out: set[str]) -> Iterator[
        tuple[LocalHost, AppWithout]]:
    served: list[AppWithout] = []

    def without(app) -> AppWithout:
        served.append(AppWithout(app, left_out))
        return served[-1]

    with contextmanager(start_room_host)(graph_emulator, storage_connection_string, wrap_app=without) as local:
        yield local, served[-1]


class HeldQueue:
    """Takes (receives and deletes) what is on one queue."""

    def __init__(self, storage_connection_string: str, name: str) -> None:
        self.name = name
        self.client = queue_client(queue_service(StorageLocation(connection_string=storage_connection_string)), name)

    def take(self) -> list[dict]:
        taken = []
        while True:
            try:
                batch = list(self.client.receive_messages(messages_per_page=32, visibility_timeout=30,
                                                          max_messages=32))
            except ResourceNotFoundError:
                return taken
            if not batch:
                return taken
            for message in batch:
                self.client.delete_message(message)
                taken.append(json.loads(message.content))

    def put(self, body: dict) -> None:
        try:
            self.client.create_queue()
        except Exception:  # noqa: BLE001 -- it exists already
            pass
        self.client.send_message(json.dumps(body))


def queue_message(body: dict, message_id: str = "test-message") -> func.QueueMessage:
    """What the host hands a queue trigger."""
    return func.QueueMessage(id=message_id, body=json.dumps(body).encode("utf-8"))
