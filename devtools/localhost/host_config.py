"""The parts of host.json the local host honours, with the real host's defaults.

`extensions.http.routePrefix` (default "api") and `extensions.queues`: visibilityTimeout
(delay before a failed message is retried, default 0), maxDequeueCount (default 5),
batchSize (default 16, at most 32), newBatchThreshold (default batchSize/2 on one core),
maxPollingInterval (caps the local poll interval) and messageEncoding (base64 or none).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.localhost.settings_file import read_json_object

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$")


class HostConfigError(ValueError):
    """host.json cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class QueueOptions:
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_polling_interval: float | None = None
    message_encoding: str = "base64"

    @property
    def fetch_threshold(self) -> int:
        """Fetch the next batch once this few messages or fewer are still running."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return self.batch_size // 2


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)


def parse_timespan(text: str, where: str) -> float:
    """Seconds in a .NET TimeSpan string such as `00:00:30` or `1.02:00:00`."""
    match = _TIMESPAN.match(str(text).strip())
    if not match:
        raise HostConfigError(f"{where} must be a time span like 00:00:30, got {text!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HostConfigError(f"{where} must be a whole number from {low} to {high}, got {value!r}")
    return value


def host_config_from_dict(document: dict, source: str = "host.json") -> HostConfig:
    extensions = document.get("extensions") or {}
    http = extensions.get("http") or {}
    queues = extensions.get("queues") or {}

    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise HostConfigError(f"{source}: extensions.http.routePrefix must be a string")

    where = f"{source}: extensions.queues"
    options = QueueOptions()
    values: dict[str, Any] = {}
    if "visibilityTimeout" in queues:
        values["visibility_timeout"] = parse_timespan(queues["visibilityTimeout"], f"{where}.visibilityTimeout")
    if "maxDequeueCount" in queues:
        values["max_dequeue_count"] = _integer(queues["maxDequeueCount"], f"{where}.maxDequeueCount", 1, 10_000)
    if "batchSize" in queues:
        values["batch_size"] = _integer(queues["batchSize"], f"{where}.batchSize", 1, 32)
    if "newBatchThreshold" in queues:
        values["new_batch_threshold"] = _integer(queues["newBatchThreshold"], f"{where}.newBatchThreshold", 0, 1000)
    if "maxPollingInterval" in queues:
        values["max_polling_interval"] = parse_timespan(queues["maxPollingInterval"], f"{where}.maxPollingInterval")
    if "messageEncoding" in queues:
        encoding = str(queues["messageEncoding"]).lower()
        if encoding not in ("base64", "none"):
            raise HostConfigError(f"{where}.messageEncoding must be base64 or none, got {queues['messageEncoding']!r}")
        values["message_encoding"] = encoding
    if values:
        options = QueueOptions(**values)
    return HostConfig(route_prefix=prefix.strip("/"), queues=options)


def load_host_config(path: str | Path | None) -> HostConfig:
    """Read host.json; no path, or a path that does not exist, gives the defaults."""
    if path is None or not Path(path).is_file():
        return HostConfig()
    path = Path(path)
    return host_config_from_dict(read_json_object(path, HostConfigError), path.name)
