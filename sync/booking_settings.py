"""Settings of the booking side (platform -> Outlook, recurrence), read from the environment
with defaults. Kept apart from sync/settings.py until they are folded in there; a bad value
raises SettingsError with one line naming the setting, like every other setting.

| setting | default | meaning |
|---|---|---|
| RECURRENCE_HORIZON_DAYS | 90 | how far ahead a series is materialised into occurrences |
| RECURRENCE_MAX_OCCURRENCES | 730 | most occurrences a bounded series may name (an endless one is cut by the horizon) |
| BOOKING_SWEEP_SCHEDULE | `0 */5 * * * *` | NCRONTAB (UTC) of the sweeper that re-queues changes a crash left behind |
| BOOKING_SWEEP_AFTER_SECONDS | 120 | how old an unsent change must be before the sweeper re-queues it |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from sync.settings import SettingsError, check_ncrontab

RECURRENCE_HORIZON_DAYS = "RECURRENCE_HORIZON_DAYS"
RECURRENCE_MAX_OCCURRENCES = "RECURRENCE_MAX_OCCURRENCES"
BOOKING_SWEEP_SCHEDULE = "BOOKING_SWEEP_SCHEDULE"
BOOKING_SWEEP_AFTER_SECONDS = "BOOKING_SWEEP_AFTER_SECONDS"

BOOKING_SETTING_NAMES = (RECURRENCE_HORIZON_DAYS, RECURRENCE_MAX_OCCURRENCES, BOOKING_SWEEP_SCHEDULE,
                         BOOKING_SWEEP_AFTER_SECONDS)
DEFAULT_SWEEP_SCHEDULE = "0 */5 * * * *"


@dataclass(frozen=True)
class BookingSettings:
    horizon_days: int = 90
    max_occurrences: int = 730
    sweep_schedule: str = DEFAULT_SWEEP_SCHEDULE
    sweep_after_seconds: int = 120


def _whole(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SettingsError(name, f"expected a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def load_booking_settings(environ: Mapping[str, str] | None = None) -> BookingSettings:
    environ = os.environ if environ is None else environ
    schedule = (environ.get(BOOKING_SWEEP_SCHEDULE) or "").strip() or DEFAULT_SWEEP_SCHEDULE
    try:
        check_ncrontab(schedule)
    except ValueError as problem:
        raise SettingsError(BOOKING_SWEEP_SCHEDULE, str(problem)) from None
    return BookingSettings(
        horizon_days=_whole(environ, RECURRENCE_HORIZON_DAYS, 90, 1, 1080),
        max_occurrences=_whole(environ, RECURRENCE_MAX_OCCURRENCES, 730, 1, 10_000),
        sweep_schedule=schedule,
        sweep_after_seconds=_whole(environ, BOOKING_SWEEP_AFTER_SECONDS, 120, 1, 86_400),
    )
