"""GET /api/openapi.json: the OpenAPI 3.1 description of this app's REST API (functions/api_spec).
Anonymous, like /api/health: it describes routes and shapes, never data, and tools read it
before they hold a key. Built once per process."""
from __future__ import annotations

import functools
import json

import azure.functions as func

from functions.api_spec import document
from sync.version import __version__

bp = func.Blueprint()


@functools.lru_cache(maxsize=1)
def served_text() -> str:
    return json.dumps(document(__version__), separators=(",", ":"))


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(served_text(), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
