"""The OpenAPI 3.1 description of the REST API, assembled from one fragment per family.

`document()` is what GET /api/openapi.json serves: exactly the routes this app registers (a test
compares both ways). `PENDING` holds fragments written ahead of their routes (booking through the
platform), kept valid by the same test but served only once their routes are registered: a
description that promises routes the app does not answer would mislead its readers.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from functions.api_spec import bookings, common, integrations, room_sync, service

SERVED = (integrations.FRAGMENT, room_sync.FRAGMENT, service.FRAGMENT, bookings.FRAGMENT)
PENDING = ()


def merge(base: Mapping[str, Any], fragments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The base document with each fragment's operations and component schemas added. Fragments
    may share a path (one reads, another writes); an operation or a schema defined twice, or a
    shared path whose parameters differ, is a mistake and raises ValueError naming it."""
    merged = copy.deepcopy(dict(base))
    paths = merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for fragment in fragments:
        for path, item in fragment.get("paths", {}).items():
            target = paths.setdefault(path, {})
            for key, value in item.items():
                if key in target and not (key == "parameters" and target[key] == value):
                    raise ValueError(f"{key} of path {path} is described twice")
                target[key] = copy.deepcopy(value)
        for name, schema in fragment.get("schemas", {}).items():
            if name in schemas:
                raise ValueError(f"schema {name} is described twice")
            schemas[name] = copy.deepcopy(schema)
    return merged


def document(version: str, fragments: Iterable[Mapping[str, Any]] = SERVED) -> dict[str, Any]:
    return merge(common.base(version), fragments)
