"""The host most end-to-end modules share: the app on the local host, its webhooks reachable by
the Graph emulator (one per module; a module defines its own `host` when it needs another)."""
from __future__ import annotations

import pytest

from tests.support.room_host import start_room_host


@pytest.fixture(scope="module")
def host(graph_emulator, storage_connection_string):
    yield from start_room_host(graph_emulator, storage_connection_string)
