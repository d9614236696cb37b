"""Whether the app's dependencies answer, for the health endpoint and its monitors.

Probes are injected as zero-argument callables that raise when their dependency is unusable,
so the verdict can be tested without a network and new dependencies plug in without touching
the endpoint. Failures are described from the exception's type and status only: exception
messages can carry endpoints, tokens or connection details and never leave this module.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from sync.settings import SettingsError

log = logging.getLogger(__name__)

STORAGE_PROBE_TIMEOUT_SECONDS = 3.0

Probe = Callable[[], Any]


@dataclass(frozen=True)
class HealthReport:
    version: str
    reachable: tuple[str, ...]
    failing: tuple[str, ...]
    details: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.failing

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok" if self.healthy else "unhealthy", "version": self.version}
        body.update({name: "reachable" for name in self.reachable})
        body.update({name: "unreachable" for name in self.failing})
        if self.failing:
            body["failing"] = list(self.failing)
            body["detail"] = "; ".join(self.details)
        return body


def check_health(probes: Mapping[str, Probe], *, version: str) -> HealthReport:
    """Runs every probe (one failing does not hide the others) and names the ones that fail."""
    reachable: list[str] = []
    failing: list[str] = []
    details: list[str] = []
    for name, probe in probes.items():
        try:
            probe()
        except Exception as error:  # noqa: BLE001 -- any failure means "not healthy", never a crash
            description = describe_failure(error)
            log.warning("health: %s is failing: %s", name, description)
            failing.append(name)
            details.append(f"{name}: {description}")
        else:
            reachable.append(name)
    return HealthReport(version, tuple(reachable), tuple(failing), tuple(details))


def describe_failure(error: BaseException) -> str:
    """A short cause that is safe to show to anyone: built from the type, never the message."""
    if isinstance(error, SettingsError):
        return f"not configured (setting {error.setting} is invalid)"
    if isinstance(error, ClientAuthenticationError) or getattr(error, "status_code", None) in (401, 403):
        return "credentials were refused"
    if isinstance(error, ServiceRequestError):
        return "cannot connect (refused, unresolvable or timed out)"
    if isinstance(error, ServiceResponseError):
        return "no complete answer in time"
    if isinstance(error, HttpResponseError):
        return f"answered HTTP {error.status_code}" if error.status_code else "answered with an error"
    return f"failed ({type(error).__name__})"


def probe_table_service(service, *, timeout: float = STORAGE_PROBE_TIMEOUT_SECONDS) -> None:
    """The cheapest authenticated Tables call: the first page of at most one table, no retries."""
    tables = service.list_tables(
        results_per_page=1, retry_total=0, connection_timeout=timeout, read_timeout=timeout
    )
    next(iter(tables), None)
