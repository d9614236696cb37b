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

from sync import logcontext
from sync.health import Probe, probe_table_service
from sync.redaction import install_log_redaction
from sync.settings import Settings, load_settings
from sync.store import connection

T = TypeVar("T")

_lock = threading.RLock()
_shared: dict[str, Any] = {}
# Logger levels as they were before settings were applied, restored by reset().
_levels_before: dict[str, int] = {}

# Loggers of this app follow LOG_LEVEL: the modules of functions/ and sync/ log under their
# module names, graph/ under "roomsync.graph.*". Libraries stay at WARNING (or quieter) unless
# debugging: the Azure SDK's request logs at INFO would drown everything else, and msal and
# urllib3 log every token and connection.
_APP_LOGGERS = ("functions", "sync", "graph", "roomsync")
_LIBRARY_LOGGERS = ("azure", "msal", "urllib3")


def _once(name: str, build: Callable[[], T]) -> T:
    with _lock:
        if name not in _shared:
            _shared[name] = build()
        return _shared[name]


def settings() -> Settings:
    """The validated settings, read from the environment once; raises SettingsError if invalid."""
    return _once("settings", _load_and_apply_settings)


def azure_credential():
    """One credential for identity-based storage, so its token cache is shared: the managed
    identity named by AzureWebJobsStorage__credential/__clientId, else DefaultAzureCredential."""
    return _once("azure_credential", lambda: connection.storage_credential(settings().storage))


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

        return GraphAccess(graph_config(settings()), SecretBox(settings().secret_encryption_key,
                                                               settings().secret_encryption_old_keys))

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
            default_max_share=settings().user_sync_max_deactivation_share,
            purges=purge_requester(), purge_steps=[step.name for step in purge_steps()])

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
            email_guard=email_guard(), leavers=QueuePublisher(queue_service(), "leaver-releases"))

    return _once("user_sync", build)


def user_listing():
    def build():
        from sync.users import UserListing

        return UserListing(users_repo(), integrations_repo())

    return _once("user_listing", build)


def email_guard():
    """Which integration holds each email address, across all of them."""
    def build():
        from sync.store.email_guard_repo import EmailGuard

        return EmailGuard(store())

    return _once("email_guard", build)


def purge_requester():
    """Puts purge requests on the integration-purge queue."""
    def build():
        from sync.events_out import QueuePublisher
        from sync.purge import PURGE_QUEUE, PurgeRequester

        return PurgeRequester(QueuePublisher(queue_service(), PURGE_QUEUE))

    return _once("purge_requester", build)


def purge_steps():
    """What a deleted integration's purge removes, in order. Later parts of the app add their
    steps here (assets, Graph subscriptions, reservations...): before `sync-state`, whose row
    holds the purge's lease on the user sync."""
    def build():
        from sync.purge import EmailGuardStep, PeopleStep, SyncStateStep, UserSyncLeaseStep

        from functions import room_context
        from sync.room_purge import AssetsStep, LogsStep, SubscriptionsStep

        rooms = (SubscriptionsStep(room_context.subscriptions_repo(), graph_access()),
                 AssetsStep(room_context.assets_repo(), room_context.reservations_repo(), room_context.calendar_state()),
                 LogsStep(room_context.synclog(), room_context.deadletters()))
        return (UserSyncLeaseStep(syncstate_repo()), *rooms, EmailGuardStep(email_guard()), PeopleStep(users_repo()),
                SyncStateStep(syncstate_repo()))

    return _once("purge_steps", build)


def integration_purge():
    """Runs purges (the integration-purge queue worker)."""
    def build():
        from sync.purge import IntegrationPurge

        return IntegrationPurge(integrations=integrations_repo(), steps=purge_steps(), requester=purge_requester())

    return _once("integration_purge", build)


def status_reader():
    """The monitoring document behind GET /api/status."""
    def build():
        from sync.monitoring import StatusReader

        return StatusReader(integrations=integrations_repo(), syncstate=syncstate_repo(), users=users_repo(),
                            table_service=table_service(), queue_service=queue_service())

    return _once("status_reader", build)


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
    """Forget settings and clients (closing them), so the next use reads the environment again;
    logger levels go back to what they were before the settings were applied."""
    with _lock:
        built = list(_shared.values())
        _shared.clear()
        for name, level in _levels_before.items():
            logging.getLogger(name).setLevel(level)
        _levels_before.clear()
    for item in built:
        close = getattr(item, "close", None)
        if callable(close):
            close()


def _storage_credential():
    return azure_credential() if settings().storage.uses_identity else None


def _load_and_apply_settings() -> Settings:
    install_log_redaction()  # before anything can log a storage URL
    loaded = load_settings()
    logcontext.install()
    apply_log_level(loaded.log_level)
    return loaded


def apply_log_level(level: str) -> None:
    """LOG_LEVEL for the app's loggers; libraries at the stricter of WARNING and LOG_LEVEL."""
    library_level = max(logging.WARNING, logging.getLevelName(level)) if level != "DEBUG" else logging.DEBUG
    with _lock:
        for names, wanted in ((_APP_LOGGERS, level), (_LIBRARY_LOGGERS, library_level)):
            for name in names:
                logger = logging.getLogger(name)
                _levels_before.setdefault(name, logger.level)
                logger.setLevel(wanted)
