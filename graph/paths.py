"""Building Graph URLs safely.

Outlook ids contain `/`, `+` and `=`, and UPNs contain `@` and sometimes `#`/`'`: every id goes
into a path percent-encoded as one segment, and into OData literals with quotes doubled
(https://learn.microsoft.com/en-us/graph/query-parameters#encoding-query-parameters).
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote, urlencode


def segment(value: str) -> str:
    """One path segment: nothing in it is left for the server to read as structure."""
    if not value:
        raise ValueError("an empty id cannot address a Graph resource")
    return quote(value, safe="")


def odata_string(value: str) -> str:
    """A single-quoted OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def query_string(params: Mapping[str, Any]) -> str:
    """Encodes spaces as %20 (not '+') and keeps `$` readable in option names."""
    return urlencode([(k, v) for k, v in params.items() if v is not None], quote_via=quote, safe="$,'()")

