"""Microsoft Graph and Entra ID for roomsync: tokens, a retrying HTTP client, paging, delta
rounds, JSON batching, per-mailbox concurrency, and thin wrappers per Graph area.

Knows HTTP, JSON and Graph's documented rules; knows nothing about bookings.
"""
from graph.auth import AppTokenProvider, Credential, StaticTokenProvider, token_roles
from graph.batch import BatchRequest, BatchResult, run_batch
from graph.client import GraphClient, Reply
from graph.config import GraphConfig
from graph.delta import DeltaReader, DeltaRound
from graph.errors import (
    ApplicationDisabled, BadRequest, ClientSecretExpired, Conflict, ConsentMissing, DeltaExpired,
    FailedDependency, Forbidden, GraphError, InvalidClientCertificate, InvalidClientSecret, NotFound,
    OutcomeUnknown, ServiceUnavailable, Throttled, TokenError, TokenServiceUnavailable, Unauthorized,
    UnknownApplication, UnknownTenant,
)

__all__ = [
    "AppTokenProvider", "ApplicationDisabled", "BadRequest", "BatchRequest", "BatchResult",
    "ClientSecretExpired", "Conflict", "ConsentMissing", "Credential", "DeltaExpired", "DeltaReader",
    "DeltaRound", "FailedDependency", "Forbidden", "GraphClient", "GraphConfig", "GraphError",
    "InvalidClientCertificate", "InvalidClientSecret", "NotFound", "OutcomeUnknown", "Reply", "ServiceUnavailable",
    "StaticTokenProvider", "Throttled", "TokenError", "TokenServiceUnavailable", "Unauthorized",
    "UnknownApplication", "UnknownTenant", "run_batch", "token_roles",
]
