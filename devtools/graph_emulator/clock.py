"""The emulator's own clock, so tests can move time (token and subscription expiry, delta
token lifetime) without waiting."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(timezone.utc) + self._offset

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        with self._lock:
            self._offset = moment - datetime.now(timezone.utc)
        return self.now()


def graph_datetime(moment: datetime) -> str:
    """Graph's UTC timestamp form with 7 fractional digits, as in subscription and event payloads."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def parse_graph_datetime(value: str) -> datetime:
    """Accepts Graph/ISO 8601 timestamps with 0-7 fractional digits and Z or an offset (UTC if none)."""
    from devtools.graph_emulator.time_zones import normalize_graph_datetime

    parsed = datetime.fromisoformat(normalize_graph_datetime(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed
