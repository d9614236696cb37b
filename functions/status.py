"""GET /api/status (function key): the monitoring document of sync.monitoring, one request for
every integration, asset, queue backlog and dead letter. 200 whenever it could be read (a
monitor decides on its `status` and `problems`); 503 naming the cause when storage cannot be
read. Unlike /api/health it names tenants and mailboxes, so it needs the key."""
from __future__ import annotations

import json
import logging

import azure.functions as func

from functions import context
from sync import logcontext
from sync.health import describe_failure

log = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.function_name("status")
@bp.route(route="status", methods=["GET"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    with logcontext.bind(correlation_id=logcontext.correlation_from_headers(req.headers)):
        try:
            body, code = context.status_reader().report(), 200
        except Exception as error:  # noqa: BLE001 -- a monitor needs an answer, not a traceback
            log.exception("status could not be read")
            # The store wraps the SDK's error; its cause says what happened (refused, unreachable).
            body = {"status": "unavailable", "detail": describe_failure(error.__cause__ or error)}
            code = 503
    return func.HttpResponse(json.dumps(body), status_code=code, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
