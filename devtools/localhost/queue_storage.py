"""Storage queues for the bindings: clients per connection setting, and message encoding.

Clients are built without encode/decode policies: the host itself encodes, so the local host
does too (base64 by default, or raw text with host.json `messageEncoding: none`) and can copy
a poison message's text unchanged. A connection setting is either a connection string
(`AzureWebJobsStorage`) or identity-based (`<name>__queueServiceUri` / `<name>__accountName`).
"""
from __future__ import annotations

import base64
import binascii
import threading
from typing import Any, Mapping

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, QueueServiceClient

from devtools.localhost.app_settings import SettingError


class MessageDecodeError(ValueError):
    """A queue message whose text is not valid for the configured encoding."""


def encode_message(body: bytes, encoding: str) -> str:
    if encoding == "none":
        return body.decode("utf-8")
    return base64.b64encode(body).decode("ascii")


def decode_message(text: str, encoding: str) -> bytes:
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MessageDecodeError("message is not valid base64 (the host's default messageEncoding)") from None


def _service_for(connection: str, settings: Mapping[str, str]) -> QueueServiceClient:
    connection_string = settings.get(connection)
    if connection_string:
        return QueueServiceClient.from_connection_string(connection_string)
    uri = settings.get(f"{connection}__queueServiceUri")
    account = settings.get(f"{connection}__accountName")
    if uri or account:
        from azure.identity import DefaultAzureCredential

        url = uri or f"https://{account}.queue.core.windows.net"
        return QueueServiceClient(account_url=url, credential=DefaultAzureCredential())
    raise SettingError(
        f"storage connection setting {connection} is not set "
        f"(give a connection string, or {connection}__queueServiceUri / {connection}__accountName)"
    )


class QueueClients:
    """Queue clients per (connection, queue), created on first use; queues created if missing."""

    def __init__(self, settings: Mapping[str, str]):
        self._settings = settings
        self._services: dict[str, QueueServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._lock = threading.Lock()

    def check_connection(self, connection: str) -> None:
        """Fail early, with the setting's name, when a connection is not configured."""
        self._service(connection)

    def _service(self, connection: str) -> QueueServiceClient:
        with self._lock:
            if connection not in self._services:
                self._services[connection] = _service_for(connection, self._settings)
            return self._services[connection]

    def queue(self, connection: str, queue_name: str) -> QueueClient:
        key = (connection, queue_name)
        with self._lock:
            client = self._queues.get(key)
        if client is not None:
            return client
        client = self._service(connection).get_queue_client(queue_name)
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        with self._lock:
            self._queues[key] = client
        return client

    def close(self) -> None:
        with self._lock:
            services, self._services, self._queues = list(self._services.values()), {}, {}
        for service in services:
            service.close()


def output_messages(value: Any, binding_name: str) -> list[bytes]:
    """The message bodies a queue output value stands for, as the Python worker accepts them:
    a str, bytes or QueueMessage is one message; a list of str / QueueMessage is several."""
    from azure.functions import QueueMessage

    if isinstance(value, str):
        return [value.encode("utf-8")]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value)]
    if isinstance(value, QueueMessage):
        return [value.get_body()]
    if isinstance(value, (list, tuple)):
        bodies = []
        for item in value:
            if isinstance(item, str):
                bodies.append(item.encode("utf-8"))
            elif isinstance(item, QueueMessage):
                bodies.append(item.get_body())
            else:
                raise TypeError(
                    f"queue output '{binding_name}': list items must be str or QueueMessage "
                    f"(as in Azure), got {type(item).__name__}"
                )
        return bodies
    raise TypeError(
        f"queue output '{binding_name}' got {type(value).__name__}; "
        "set a str, bytes, QueueMessage or a list of str / QueueMessage"
    )
