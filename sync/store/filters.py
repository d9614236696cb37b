"""Safe OData filters: values go in as `@name` parameters and come out as quoted literals.

The SDK's own substitution splits the filter on spaces, so `(@name)` or a value containing
` @x` breaks it. This one skips quoted literals and escapes every value, so keys and ids can
never change the meaning of a filter.
"""
from __future__ import annotations

import math
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

_TOKEN = re.compile(r"('(?:[^']|'')*')|@([A-Za-z_][A-Za-z0-9_]*)")
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


def literal(value: Any, name: str = "value") -> str:
    """`value` written as an OData literal for a Table filter."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value in _INT32:
            return str(value)
        if value in _INT64:
            return f"{value}L"
        raise ValueError(f"filter parameter {name!r} does not fit in 64 bits")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"filter parameter {name!r} must be a finite number")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"filter parameter {name!r} is a naive datetime; give it a time zone")
        stamp = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"datetime'{stamp}'"
    if isinstance(value, uuid.UUID):
        return f"guid'{value}'"
    if isinstance(value, (bytes, bytearray)):
        return f"X'{bytes(value).hex()}'"
    raise ValueError(f"filter parameter {name!r} has unsupported type {type(value).__name__}")


def substitute(query_filter: str, parameters: Mapping[str, Any] | None) -> str:
    """Replace each `@name` outside quoted literals with the literal of `parameters[name]`."""
    parameters = dict(parameters or {})
    used: set[str] = set()

    def replace(match: re.Match) -> str:
        if match.group(1) is not None:
            return match.group(1)
        name = match.group(2)
        if name not in parameters:
            raise ValueError(f"filter names @{name} but no parameter {name!r} was given")
        used.add(name)
        return literal(parameters[name], name)

    result = _TOKEN.sub(replace, query_filter)
    unused = sorted(set(parameters) - used)
    if unused:
        raise ValueError(f"filter parameters not used by the filter: {', '.join(unused)}")
    return result
