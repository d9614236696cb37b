"""Composition root: turns the app settings into the shared objects every function uses.

Functions call these accessors instead of building clients, so one worker process validates
its settings once and reuses one connection pool per service across invocations. Everything
is built on first use, never at import, so importing the app needs no network.

function_app.py calls `settings()` while the app is imported; a bad setting therefore stops
the app from loading at all (see function_app.py for why). Tests call `reset()` after changing
the environment.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, TypeVar

from sync.health import Probe, probe_table_service
from sync.settings import Settings, load_settings
from sync.store import connection

T = TypeVar("T")

_lock = threading.RLock()
_shared: dict[str, Any] = {}

# Loggers of this app's packages follow LOG_LEVEL; the Azure SDK stays at WARNING unless
# debugging, because its request logs at INFO would drown everything else.
_APP_LOGGERS = ("functions", "sync", "graph")


def _once(name: str, build: Callable[[], T]) -> T:
    with _lock:
        if name not in _shared:
            _shared[name] = build()
        return _shared[name]


def settings() -> Settings:
    """The validated settings, read from the environment once; raises SettingsError if invalid."""
    return _once("settings", _load_and_apply_settings)


def azure_credential():
    """One DefaultAzureCredential for identity-based storage, so its token cache is shared."""
    def build():
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    return _once("azure_credential", build)


def table_service():
    """The shared azure.data.tables TableServiceClient."""
    return _once("table_service", lambda: connection.table_service(settings().storage, credential=_storage_credential()))


def queue_service():
    """The shared azure.storage.queue QueueServiceClient (base64 messages, as the host expects)."""
    return _once("queue_service", lambda: connection.queue_service(settings().storage, credential=_storage_credential()))


def health_probes() -> dict[str, Probe]:
    """What the health endpoint checks, by the name it reports."""
    return {"storage": lambda: probe_table_service(table_service())}


def store():
    """One Store (tables opened once, shared counters) over the shared table service."""
    from sync.store import Store

    return _once("store", lambda: Store(table_service()))


def graph_access():
    """Builds Graph clients for integrations from the settings and the secret key."""
    def build():
        from sync.credentials import GraphAccess, graph_config
        from sync.secret_box import SecretBox

        return GraphAccess(graph_config(settings()), SecretBox(settings().secret_encryption_key))

    return _once("graph_access", build)


def sync_requester():
    """Puts user-sync requests on their queue."""
    def build():
        from sync.events_out import QueuePublisher
        from sync.users import USER_SYNC_QUEUE, SyncRequester

        return SyncRequester(QueuePublisher(queue_service(), USER_SYNC_QUEUE))

    return _once("sync_requester", build)


def integration_service():
    """The integrations service behind the REST API."""
    def build():
        from sync.integrations import IntegrationService

        return IntegrationService(
            integrations=integrations_repo(), syncstate=syncstate_repo(), users=users_repo(),
            access=graph_access(), requester=sync_requester(),
            default_max_share=settings().user_sync_max_deactivation_share)

    return _once("integration_service", build)


def user_sync():
    """Runs user syncs (the user-sync queue worker)."""
    def build():
        from sync.events_out import USER_EVENTS_QUEUE, QueuePublisher, UserEventPublisher
        from sync.users import UserSync

        return UserSync(
            integrations=integrations_repo(), users=users_repo(), syncstate=syncstate_repo(),
            access=graph_access(), events=UserEventPublisher(QueuePublisher(queue_service(), USER_EVENTS_QUEUE)),
            default_max_share=settings().user_sync_max_deactivation_share, requester=sync_requester(),
            leavers=QueuePublisher(queue_service(), "leaver-releases"))

    return _once("user_sync", build)


def user_listing():
    def build():
        from sync.users import UserListing

        return UserListing(users_repo())

    return _once("user_listing", build)


def integrations_repo():
    def build():
        from sync.store.integrations_repo import IntegrationsRepo

        return IntegrationsRepo(store())

    return _once("integrations_repo", build)


def syncstate_repo():
    def build():
        from sync.store.syncstate_repo import SyncStateRepo

        return SyncStateRepo(store())

    return _once("syncstate_repo", build)


def users_repo():
    def build():
        from sync.store.users_repo import UsersRepo

        return UsersRepo(store())

    return _once("users_repo", build)


def reset() -> None:
    """Forget settings and clients (closing them), so the next use reads the environment again."""
    with _lock:
        built = list(_shared.values())
        _shared.clear()
    for item in built:
        close = getattr(item, "close", None)
        if callable(close):
            close()


def _storage_credential():
    return azure_credential() if settings().storage.uses_identity else None


def _load_and_apply_settings() -> Settings:
    loaded = load_settings()
    for name in _APP_LOGGERS:
        logging.getLogger(name).setLevel(loaded.log_level)
    logging.getLogger("azure").setLevel("DEBUG" if loaded.log_level == "DEBUG" else "WARNING")
    return loaded
