"""Graph's error envelope: {"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from werkzeug.wrappers import Response


class GraphError(Exception):
    """Raised by handlers; the app turns it into Graph's JSON error response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 inner_code: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner_code = inner_code


def error_body(code: str, message: str, request_id: str, client_request_id: str | None,
               inner_code: str | None = None) -> dict:
    inner = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    if inner_code:
        inner["code"] = inner_code
    return {"error": {"code": code, "message": message, "innerError": inner}}


def error_response(err: GraphError, request_id: str, client_request_id: str | None) -> Response:
    body = error_body(err.code, err.message, request_id, client_request_id, err.inner_code)
    response = Response(json.dumps(body), status=err.status, mimetype="application/json")
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(message: str, code: str = "ErrorItemNotFound") -> GraphError:
    return GraphError(404, code, message)
