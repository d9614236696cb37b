"""local.settings.json `Values` into the environment, the way Core Tools does it: a variable
that is already set keeps its value, so the shell (or CI) can always override the file."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import MutableMapping


class SettingsFileError(ValueError):
    """The settings file cannot be used; the message names the file and the reason."""


def read_json_object(path: Path, error: type[ValueError]) -> dict:
    """The JSON object in a host file (BOM allowed, as Core Tools allows it); `error` names the
    file and the reason when it is not valid JSON or not an object."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise error(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(document, dict):
        raise error(f"{path.name} must hold a JSON object")
    return document


def read_values(path: str | Path) -> dict[str, str]:
    """The `Values` object of a local.settings.json file, every value as a string."""
    path = Path(path)
    try:
        document = read_json_object(path, SettingsFileError)
    except FileNotFoundError:
        raise SettingsFileError(f"settings file {path} does not exist") from None
    if document.get("IsEncrypted") is True:
        raise SettingsFileError(f"{path.name} is encrypted (IsEncrypted: true); decrypt it or set IsEncrypted to false")
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise SettingsFileError(f"{path.name}: Values must be a JSON object")
    return {str(name): _as_text(value) for name, value in values.items() if value is not None}


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def apply_values(values: dict[str, str], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set each value that the environment does not already have; returns the names set."""
    environ = os.environ if environ is None else environ
    applied = []
    for name, value in values.items():
        if name not in environ:
            environ[name] = value
            applied.append(name)
    return applied
