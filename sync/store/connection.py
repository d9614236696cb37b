"""Where the Storage account is and how to reach it: a connection string (Azurite, keys)
or an identity-based connection (`AzureWebJobsStorage__accountName` / `__tableServiceUri` /
`__queueServiceUri`) authenticated with azure-identity's DefaultAzureCredential."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StorageLocation:
    connection_string: str | None = None
    account_name: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None

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


def _credential():
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def table_service(location: StorageLocation, credential=None):
    """A TableServiceClient for the location (one per process is enough; it pools connections)."""
    from azure.data.tables import TableServiceClient

    if location.connection_string:
        return TableServiceClient.from_connection_string(location.connection_string)
    return TableServiceClient(endpoint=location.table_endpoint(), credential=credential or _credential())


def queue_service(location: StorageLocation, credential=None):
    """A QueueServiceClient; get queue clients through `queue_client()` so messages are base64."""
    from azure.storage.queue import QueueServiceClient

    if location.connection_string:
        return QueueServiceClient.from_connection_string(location.connection_string)
    return QueueServiceClient(account_url=location.queue_endpoint(), credential=credential or _credential())


def queue_client(service, queue_name: str):
    """A QueueClient whose messages are base64 text, the Functions host's default encoding.

    QueueServiceClient.get_queue_client does not pass its own encode policy down, so the policy
    is given here, once, for every producer and consumer of the app.
    """
    from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy

    return service.get_queue_client(
        queue_name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy()
    )
