"""The Table layer's test vocabulary: entity rows, a service client on Azurite, and a transport
that lists the requests leaving the process (to prove that a refusal sent nothing, or to read
what was sent). Test modules import the fixture by name:
`from tests.support.tables import azurite_tables`."""
from __future__ import annotations

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient


def row(pk: str = "p", rk: str = "r", **props) -> dict:
    """An entity with its keys and properties."""
    return {"PartitionKey": pk, "RowKey": rk, **props}


class RecordingTransport(RequestsTransport):
    """Real HTTP, with `(method, url, headers)` of every request that left the process."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, dict]] = []

    def send(self, request, **kwargs):
        self.sent.append((request.method, request.url, dict(request.headers)))
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def azurite_tables(storage_connection_string) -> TableServiceClient:
    """The Azure SDK's table service client on the session's Azurite."""
    return TableServiceClient.from_connection_string(storage_connection_string)
