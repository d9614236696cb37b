"""App settings references (`%NAME%`) in binding properties, resolved like the host does."""
from __future__ import annotations

import re
from typing import Mapping

_REFERENCE = re.compile(r"%([^%\s]+)%")


class SettingError(ValueError):
    """A setting a binding needs is missing; the message names the setting and who needs it."""


def resolve_refs(text: str, settings: Mapping[str, str], where: str) -> str:
    """Replace each `%NAME%` in `text` with the value of setting NAME."""
    def value_of(match: re.Match) -> str:
        name = match.group(1)
        value = settings.get(name)
        if value is None or not str(value).strip():
            raise SettingError(f"{where} refers to setting {name}, which is not set")
        return str(value).strip()

    return _REFERENCE.sub(value_of, text)
