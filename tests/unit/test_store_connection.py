"""Identity-based connections: the endpoint comes from the account name, no key, no network."""
from __future__ import annotations

import pytest

from sync.store import connection
from sync.store.connection import StorageLocation, queue_client, queue_service, table_service


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


# ---- timeouts and retries of every built client ---------------------------------------------

AZURITE_LIKE = StorageLocation(connection_string=(
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;"))


def _pipeline(client):
    """The azure-core pipeline of a Tables or Queues client."""
    inner = getattr(client, "_client", None)
    inner = getattr(inner, "_client", inner)
    return getattr(inner, "_pipeline", None) or client._pipeline


def _retry_policy(client):
    from azure.core.pipeline.policies import RetryPolicy
    from azure.storage.queue._shared.policies import StorageRetryPolicy

    found = [p for p in _pipeline(client)._impl_policies if isinstance(p, (RetryPolicy, StorageRetryPolicy))]
    assert len(found) == 1, found
    return found[0]


def _connection_config(client):
    transport = _pipeline(client)._transport
    transport = getattr(transport, "_transport", transport)  # child clients wrap the shared transport
    return transport.connection_config


@pytest.mark.parametrize("location", [AZURITE_LIKE, StorageLocation(account_name="roomsyncprod")])
def test_table_clients_carry_the_app_timeouts_and_retries(location):
    service = table_service(location, credential=UnusedCredential())
    for client in (service, service.get_table_client("people")):
        policy = _retry_policy(client)
        assert policy.total_retries == connection.RETRY_TOTAL
        assert policy.backoff_factor == connection.RETRY_BACKOFF_FACTOR
        assert policy.backoff_max == connection.RETRY_BACKOFF_MAX_SECONDS
        config = _connection_config(client)
        assert (config.timeout, config.read_timeout) == (connection.CONNECTION_TIMEOUT_SECONDS,
                                                         connection.READ_TIMEOUT_SECONDS)


@pytest.mark.parametrize("location", [AZURITE_LIKE, StorageLocation(account_name="roomsyncprod")])
def test_queue_clients_carry_the_app_timeouts_and_short_retries(location):
    service = queue_service(location, credential=UnusedCredential())
    for client in (service, queue_client(service, "user-sync")):
        policy = _retry_policy(client)
        assert policy.total_retries == connection.RETRY_TOTAL
        assert policy.backoff == connection.QUEUE_BACKOFF_SECONDS  # not the SDK's 15 s-based exponential
        config = _connection_config(client)
        assert (config.timeout, config.read_timeout) == (connection.CONNECTION_TIMEOUT_SECONDS,
                                                         connection.READ_TIMEOUT_SECONDS)


def test_one_storage_call_fits_the_function_and_http_budgets():
    worst = connection.worst_case_call_seconds()
    assert worst == 3 * (5 + 15) + 2 * 1.5
    function_timeout = 10 * 60  # host.json functionTimeout
    assert worst * 3 < 230 < function_timeout  # three stuck calls still answer an HTTP request in time


# ---- which identity an identity-based connection uses -----------------------------------------

class IdentityEndpoint:
    """The App Service / Functions managed-identity endpoint (IDENTITY_ENDPOINT) on loopback,
    recording which identity each token request asks for."""

    def __init__(self) -> None:
        import json
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit

                outer.requests.append(parse_qs(urlsplit(self.path).query))
                body = json.dumps({"access_token": "token", "expires_on": str(int(time.time()) + 3600),
                                   "resource": "https://storage.azure.com", "token_type": "Bearer"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/msi/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def identity_endpoint(monkeypatch):
    endpoint = IdentityEndpoint()
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", "header-value")
    yield endpoint
    endpoint.stop()


USER_ASSIGNED = "6f1c2f8e-8a4b-4c1e-9d51-0a7e4b2c9f31"
SCOPE = "https://storage.azure.com/.default"


def _identity_settings(**extra):
    from sync.settings import load_settings

    return load_settings({"AzureWebJobsStorage__accountName": "roomsyncprod", "PUBLIC_BASE_URL": "https://x.example",
                          "SECRET_ENCRYPTION_KEY": "A" * 43 + "=", **extra}).storage


def test_managedidentity_with_a_client_id_asks_for_the_user_assigned_identity(identity_endpoint):
    storage = _identity_settings(AzureWebJobsStorage__credential="managedidentity",
                                 AzureWebJobsStorage__clientId=USER_ASSIGNED)
    credential = connection.storage_credential(storage)
    assert type(credential).__name__ == "ManagedIdentityCredential"
    assert credential.get_token(SCOPE).token == "token"
    assert identity_endpoint.requests[-1]["client_id"] == [USER_ASSIGNED]


def test_managedidentity_without_a_client_id_uses_the_system_assigned_identity(identity_endpoint):
    credential = connection.storage_credential(_identity_settings(AzureWebJobsStorage__credential="managedidentity"))
    credential.get_token(SCOPE)
    assert "client_id" not in identity_endpoint.requests[-1]


def test_without_credential_default_credential_falls_back_to_the_named_identity(identity_endpoint):
    credential = connection.storage_credential(_identity_settings(AzureWebJobsStorage__clientId=USER_ASSIGNED))
    assert type(credential).__name__ == "DefaultAzureCredential"
    credential.get_token(SCOPE)
    assert identity_endpoint.requests[-1]["client_id"] == [USER_ASSIGNED]
