"""Where the Storage account is, how to reach it, and how patient its clients are.

A connection string (Azurite, keys, SAS), or an identity-based connection
(`AzureWebJobsStorage__accountName` / `__tableServiceUri` / `__queueServiceUri`) authenticated the
way the Functions host authenticates it: `__credential=managedidentity` uses the app's managed
identity (the user-assigned one named by `__clientId`, else the system-assigned one); without
`__credential`, azure-identity's DefaultAzureCredential (developer sign-in, environment, then a
managed identity, the one `__clientId` names if set).

Every client gets the same timeouts and retries (`STORAGE_CLIENT_OPTIONS`), instead of
azure-core's defaults (300 s read timeout; 10 retries for Tables, Storage's 15 s-based backoff for
queues), which would let one stuck call outlast a queue message's visibility and an HTTP answer.
One call waits at most `worst_case_call_seconds()` (about 1 minute): inside the function timeout
(10 minutes, host.json) with room for the Graph calls of the same run (each bounded by
GraphConfig: 30 s read timeout, 30 s of retry waits), and inside the 230 s an HTTP request may
take in front of Azure Functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One attempt: the TCP/TLS connection within 5 s, the answer within 15 s (table and queue
# operations answer in milliseconds; the service's own limit for one is 30 s, for a query page 5 s).
CONNECTION_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
# Retries after the first attempt (connection failures, 408, 429, 5xx), with short waits.
RETRY_TOTAL = 2
# Tables (azure-core RetryPolicy, exponential: no wait, then factor * 2**(n-1)) -> 0 s, then 1 s.
RETRY_BACKOFF_FACTOR = 0.5
RETRY_BACKOFF_MAX_SECONDS = 4
# Queues (azure-storage's own policies; its exponential one starts at 15 s): 1 s +- 0.5 s each time.
QUEUE_BACKOFF_SECONDS = 1
QUEUE_BACKOFF_JITTER_SECONDS = 0.5

STORAGE_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": CONNECTION_TIMEOUT_SECONDS,
    "read_timeout": READ_TIMEOUT_SECONDS,
    "retry_total": RETRY_TOTAL,
    "retry_backoff_factor": RETRY_BACKOFF_FACTOR,
    "retry_backoff_max": RETRY_BACKOFF_MAX_SECONDS,
}


def worst_case_call_seconds() -> float:
    """The longest one storage call can take: every attempt timing out, with the longest waits."""
    attempts = RETRY_TOTAL + 1
    queue_waits = RETRY_TOTAL * (QUEUE_BACKOFF_SECONDS + QUEUE_BACKOFF_JITTER_SECONDS)
    table_waits = sum(min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_FACTOR * 2 ** (n - 1)) if n > 1 else 0
                      for n in range(1, RETRY_TOTAL + 1))
    return attempts * (CONNECTION_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + max(queue_waits, table_waits)


@dataclass(frozen=True)
class StorageLocation:
    connection_string: str | None = None
    account_name: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    # `AzureWebJobsStorage__credential` is `managedidentity`.
    managed_identity: bool = False
    # `AzureWebJobsStorage__clientId`: the user-assigned managed identity to use.
    client_id: str | None = None

    def table_endpoint(self) -> str:
        return self._endpoint("table", self.table_service_uri)

    def queue_endpoint(self) -> str:
        return self._endpoint("queue", self.queue_service_uri)

    def _endpoint(self, service: str, service_uri: str | None) -> str:
        """The service URI when one is set, else the account's public endpoint for `service`."""
        if service_uri:
            return service_uri.rstrip("/")
        if self.account_name:
            return f"https://{self.account_name}.{service}.core.windows.net"
        raise ValueError(f"no {service} endpoint: set AzureWebJobsStorage or AzureWebJobsStorage__accountName")

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string


def storage_credential(location: StorageLocation):
    """The token credential for an identity-based location, built as the Functions host builds it
    (nothing is fetched until a client asks for a token)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if location.managed_identity:
        return ManagedIdentityCredential(client_id=location.client_id) if location.client_id \
            else ManagedIdentityCredential()
    if location.client_id:
        return DefaultAzureCredential(managed_identity_client_id=location.client_id)
    return DefaultAzureCredential()


def table_service(location: StorageLocation, credential=None):
    """A TableServiceClient for the location (one per process is enough; it pools connections)."""
    from azure.data.tables import TableServiceClient

    if location.connection_string:
        return TableServiceClient.from_connection_string(location.connection_string, **STORAGE_CLIENT_OPTIONS)
    return TableServiceClient(endpoint=location.table_endpoint(), credential=credential or storage_credential(location),
                              **STORAGE_CLIENT_OPTIONS)


def queue_service(location: StorageLocation, credential=None):
    """A QueueServiceClient; get queue clients through `queue_client()` so messages are base64."""
    from azure.storage.queue import QueueServiceClient

    options = dict(STORAGE_CLIENT_OPTIONS, retry_policy=_queue_retry_policy())
    if location.connection_string:
        return QueueServiceClient.from_connection_string(location.connection_string, **options)
    return QueueServiceClient(account_url=location.queue_endpoint(), credential=credential or storage_credential(location),
                              **options)


def _queue_retry_policy():
    from azure.storage.queue import LinearRetry

    return LinearRetry(backoff=QUEUE_BACKOFF_SECONDS, random_jitter_range=QUEUE_BACKOFF_JITTER_SECONDS,
                       retry_total=RETRY_TOTAL)


def queue_client(service, queue_name: str):
    """A QueueClient whose messages are base64 text, the Functions host's default encoding.

    QueueServiceClient.get_queue_client does not pass its own encode policy down, so the policy
    is given here, once, for every producer and consumer of the app.
    """
    from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy

    return service.get_queue_client(
        queue_name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy()
    )
