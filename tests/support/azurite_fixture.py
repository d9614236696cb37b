"""Session-wide Azurite for tests: one in-memory instance on free ports, stopped at the end."""
from __future__ import annotations

import uuid

import pytest

from devtools.azurite import Azurite


@pytest.fixture(scope="session")
def azurite():
    with Azurite() as instance:
        yield instance


@pytest.fixture(scope="session")
def storage_connection_string(azurite) -> str:
    return azurite.connection_string


@pytest.fixture
def unique_name():
    """A fresh lowercase alphanumeric name, valid for tables and queues, so tests never share state."""
    def make(prefix: str = "t") -> str:
        return f"{prefix}{uuid.uuid4().hex[:16]}"
    return make
