"""Where Graph and Entra live and how patient the client is.

Callers build this from their own settings (graph/ never reads app settings itself), so the
public cloud, national clouds and the local emulator differ only in these values.
"""
from __future__ import annotations

from dataclasses import dataclass

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
PUBLIC_API_BASE = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE_SUFFIX = "/.default"

# Outlook allows 4 concurrent requests per app and mailbox
# (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
OUTLOOK_MAILBOX_CONCURRENCY = 4


@dataclass(frozen=True)
class GraphConfig:
    authority_host: str = PUBLIC_AUTHORITY_HOST
    api_base: str = PUBLIC_API_BASE
    # Optional PEM file of extra trusted CAs (e.g. the emulator's), added to the default store.
    ca_bundle: str | None = None
    # (connect, read) seconds for every HTTP call, Graph and Entra alike.
    timeout: tuple[float, float] = (5.0, 30.0)
    # Longest total time one call may spend waiting between retries before it gives up with
    # Throttled, so a queue worker can re-enqueue instead of burning its invocation.
    max_retry_wait: float = 30.0
    # Size of the HTTP connection pool (threads sharing one client).
    pool_size: int = 16
    # Token scope; by default the Graph resource of `api_base` + "/.default".
    scope: str | None = None

    def __post_init__(self) -> None:
        for name in ("authority_host", "api_base"):
            value = getattr(self, name)
            if not value.startswith("https://"):
                # MSAL refuses non-https authorities, and Graph tokens must never travel in clear.
                raise ValueError(f"GraphConfig.{name} must be an https URL, got {value!r}")
            object.__setattr__(self, name, value.rstrip("/"))
        if self.max_retry_wait < 0:
            raise ValueError("GraphConfig.max_retry_wait must not be negative")
        if self.pool_size < 1:
            raise ValueError("GraphConfig.pool_size must be at least 1")

    @property
    def graph_resource(self) -> str:
        """The App ID URI of Graph in this cloud (scheme + host of the API base), e.g.
        https://graph.microsoft.us for US Government L4."""
        scheme, _, rest = self.api_base.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    @property
    def scopes(self) -> list[str]:
        return [self.scope or self.graph_resource + GRAPH_SCOPE_SUFFIX]
