"""GET /api/health: anonymous, so load balancers and monitors can probe without a key.

Answers 200 when every dependency responds and 503 naming the failing ones; the verdict
comes from sync.health.
"""
from __future__ import annotations

import json

import azure.functions as func

from functions import context
from sync.health import check_health
from sync.version import __version__

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    report = check_health(context.health_probes(), version=__version__)
    return func.HttpResponse(
        json.dumps(report.as_dict()),
        status_code=200 if report.healthy else 503,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
