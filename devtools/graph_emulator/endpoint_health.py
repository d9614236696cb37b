"""Graph's per-endpoint "slow" and "drop" states (delivery-webhooks page, 2026).

Within a 10-minute window, more than 10 % of responses slower than the 3 s acknowledgement
timeout put an endpoint in the slow state (new notifications held back 10 minutes); more than
15 % slower than the 10 s retry timeout put it in the drop state (notifications lost for
10 minutes). Windows and holds run on the emulator clock, so tests move time instead of waiting.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devtools.graph_emulator.notification_settings import NotificationSettings

NORMAL, SLOW, DROP = "normal", "slow", "drop"


@dataclass
class _Samples:
    # (when, beyond the 3 s ack timeout, beyond the 10 s retry timeout)
    window: deque[tuple[datetime, bool, bool]] = field(default_factory=deque)
    slow_until: datetime | None = None
    drop_until: datetime | None = None


class HealthBoard:
    """Keyed by notification URL. Callers hold the world lock."""

    def __init__(self) -> None:
        self._by_url: dict[str, _Samples] = {}

    def record(self, url: str, now: datetime, beyond_ack: bool, beyond_retry: bool,
               settings: NotificationSettings) -> None:
        if not settings.auto_health:
            return
        samples = self._by_url.setdefault(url, _Samples())
        samples.window.append((now, beyond_ack, beyond_retry))
        horizon = now - timedelta(seconds=settings.health_window_seconds)
        while samples.window and samples.window[0][0] < horizon:
            samples.window.popleft()
        count = len(samples.window)
        if count < max(settings.health_min_sample, 1):
            return
        slow_share = sum(1 for _, late, _ in samples.window if late) / count
        drop_share = sum(1 for _, _, very_late in samples.window if very_late) / count
        if drop_share > settings.drop_ratio:
            samples.drop_until = now + timedelta(seconds=settings.drop_hold_seconds)
            samples.window.clear()
        elif slow_share > settings.slow_ratio:
            samples.slow_until = now + timedelta(seconds=settings.slow_hold_seconds)
            samples.window.clear()

    def state(self, url: str, now: datetime) -> str:
        samples = self._by_url.get(url)
        if samples is None:
            return NORMAL
        if samples.drop_until and now < samples.drop_until:
            return DROP
        if samples.slow_until and now < samples.slow_until:
            return SLOW
        return NORMAL

    def snapshot(self, now: datetime) -> dict[str, str]:
        return {url: self.state(url, now) for url in self._by_url}

    def reset(self) -> None:
        self._by_url.clear()
