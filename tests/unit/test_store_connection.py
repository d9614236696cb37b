"""Identity-based connections: the endpoint comes from the account name, no key, no network."""
from __future__ import annotations

import pytest

from sync.store.connection import StorageLocation, queue_service, table_service


class UnusedCredential:
    """A token credential that fails the test if anything asks it for a token."""

    def get_token(self, *scopes, **kwargs):
        raise AssertionError("building a client must not fetch a token")


def test_account_name_alone_gives_the_public_cloud_endpoints():
    location = StorageLocation(account_name="roomsyncprod")
    assert location.uses_identity
    assert location.table_endpoint() == "https://roomsyncprod.table.core.windows.net"
    assert location.queue_endpoint() == "https://roomsyncprod.queue.core.windows.net"


def test_clients_for_an_identity_location_point_at_the_account():
    location = StorageLocation(account_name="roomsyncprod")
    tables = table_service(location, credential=UnusedCredential())
    queues = queue_service(location, credential=UnusedCredential())
    assert tables.url.startswith("https://roomsyncprod.table.core.windows.net")
    assert tables.account_name == "roomsyncprod"
    assert queues.url.startswith("https://roomsyncprod.queue.core.windows.net")


def test_explicit_service_uris_win_over_the_account_name():
    location = StorageLocation(account_name="ignored", table_service_uri="https://tables.example.test/",
                               queue_service_uri="https://queues.example.test/")
    assert location.table_endpoint() == "https://tables.example.test"
    assert location.queue_endpoint() == "https://queues.example.test"


def test_a_location_without_any_setting_names_the_setting_to_add():
    with pytest.raises(ValueError, match="AzureWebJobsStorage__accountName"):
        StorageLocation().table_endpoint()
