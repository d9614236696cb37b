"""The OpenAPI 3.1 description of the REST API, assembled from one fragment per family.

`document()` is what GET /api/openapi.json serves: exactly the routes this app registers (a test
compares both ways). `PENDING` holds fragments written ahead of their routes (the room sync's
contract), kept valid by the same test but served only once their routes are registered: a
description that promises routes the app does not answer would mislead its readers.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from functions.api_spec import common, integrations, room_sync, service

SERVED = (integrations.FRAGMENT, service.FRAGMENT)
PENDING = (room_sync.FRAGMENT,)


def merge(base: Mapping[str, Any], fragments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The base document with each fragment's paths and component schemas added; a path or a
    schema defined twice is a mistake and raises ValueError naming it."""
    merged = copy.deepcopy(dict(base))
    paths = merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for fragment in fragments:
        for path, item in fragment.get("paths", {}).items():
            if path in paths:
                raise ValueError(f"path {path} is described twice")
            paths[path] = copy.deepcopy(item)
        for name, schema in fragment.get("schemas", {}).items():
            if name in schemas:
                raise ValueError(f"schema {name} is described twice")
            schemas[name] = copy.deepcopy(schema)
    return merged


def document(version: str, fragments: Iterable[Mapping[str, Any]] = SERVED) -> dict[str, Any]:
    return merge(common.base(version), fragments)
