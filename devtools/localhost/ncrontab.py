"""Timer schedules for the local host: the app's own NCRONTAB parser (`sync.ncrontab`), plus the
`%NAME%` references a timer trigger's schedule may hold, resolved from the app settings as the
Functions host does. One parser, so the local host fires exactly what settings accepted."""
from __future__ import annotations

from typing import Mapping

from devtools.localhost.app_settings import SettingError, resolve_refs
from sync.ncrontab import Schedule, ScheduleError, next_after, parse

__all__ = ["Schedule", "ScheduleError", "next_after", "parse", "resolve_settings"]


def resolve_settings(expression: str, settings: Mapping[str, str]) -> str:
    """Replace each `%NAME%` with the setting's value, as the host does for timer schedules."""
    try:
        return resolve_refs(expression, settings, f"schedule '{expression}'")
    except SettingError as exc:
        raise ScheduleError(str(exc)) from None
