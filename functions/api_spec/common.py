"""What every part of the description shares: the document's frame, the function key, the error
body and small builders that keep the fragments short."""
from __future__ import annotations

from typing import Any

ERROR_CODES = {
    400: "The request is malformed (not JSON, a field missing or of the wrong type, an unknown field or parameter).",
    401: "No valid function key (x-functions-key header or code query parameter).",
    403: "A Graph permission the request needs is not granted; the message names it (e.g. Place.Read.All).",
    404: "No such resource.",
    409: "The request conflicts with the current state (a duplicate, a parked integration, a concurrent change).",
    422: "The request is well formed but a value breaks a rule; `field` names it.",
    500: "Unexpected failure; details are in the logs.",
    503: "A dependency (Entra ID, Graph, storage, a queue) is unavailable; try again.",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[str, Any]:
    """Error answers by status, each the JSON error body."""
    return {str(code): {"$ref": f"#/components/responses/Error{code}"} for code in codes}


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def query_parameter(name: str, description: str, schema: dict[str, Any] | None = None,
                    required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type", "string")
    return {**schema, "type": [kind, "null"]}


TIME = {"type": "string", "format": "date-time"}
OPTIONAL_TIME = nullable(TIME)
ANONYMOUS: list[dict[str, list]] = []  # an operation's `security` that needs no key


def base(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "roomsync",
            "version": version,
            "summary": "Keeps a booking platform's rooms, reservations and people in sync with Microsoft 365.",
            "description": "Every route needs the function key unless its operation says otherwise. Errors are "
                           "`{\"error\": {\"code\", \"message\", \"field\"?}}`; `field` names the part of the "
                           "request at fault. Times are ISO 8601 in UTC.",
        },
        "servers": [{"url": "/api"}],
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "description": "A stable code to match on."},
                            "message": {"type": "string", "description": "What is wrong, for a person."},
                            "field": {"type": "string", "description": "The request field or parameter at fault."},
                        },
                        "additionalProperties": True,
                    }},
                },
            },
            "responses": {f"Error{code}": json_body(ref("Error"), text) for code, text in ERROR_CODES.items()},
        },
    }
