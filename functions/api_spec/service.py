"""The service's own routes: health, the monitoring status, this description and the console."""
from __future__ import annotations

from functions.api_spec.common import ANONYMOUS, OPTIONAL_TIME, TIME, errors, json_body, path_parameter

HTML = {"description": "The console page.", "content": {"text/html": {"schema": {"type": "string"}}}}

FRAGMENT = {
    "paths": {
        "/health": {"get": {
            "operationId": "health", "tags": ["service"], "summary": "Whether dependencies answer",
            "security": ANONYMOUS,
            "responses": {"200": json_body({"type": "object", "required": ["status", "version"],
                                            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                                            "additionalProperties": {"type": "string"}}, "Healthy."),
                          "503": json_body({"type": "object", "required": ["status", "failing"], "properties": {
                              "status": {"const": "unhealthy"}, "failing": {"type": "array", "items": {"type": "string"}},
                              "detail": {"type": "string"}}}, "A dependency is failing; `failing` names it.")}}},
        "/status": {"get": {
            "operationId": "status", "tags": ["service"], "summary": "Everything a monitor needs, in one document",
            "description": "Integrations with their last user sync, assets with their subscription, the backlog "
                           "of every queue the app uses (poison queues included) and dead letters. Alert on "
                           "`status` other than `ok`; `problems` says why.",
            "responses": {"200": json_body({"$ref": "#/components/schemas/Status"}, "The status."),
                          "503": json_body({"type": "object", "properties": {"status": {"const": "unavailable"},
                                                                             "detail": {"type": "string"}}},
                                           "Storage could not be read."),
                          **errors(401)}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["service"], "summary": "This description", "security": ANONYMOUS,
            "responses": {"200": json_body({"type": "object"}, "OpenAPI 3.1.")}}},
        "/console": {"get": {
            "operationId": "console_page", "tags": ["service"], "summary": "The admin console (HTML)",
            "description": "Carries no secret: it asks for the function key once and keeps it for the browser "
                           "session.", "security": ANONYMOUS, "responses": {"200": HTML}}},
        "/console/{file}": {"get": {
            "operationId": "console_file", "tags": ["service"], "summary": "The console's script and style sheet",
            "security": ANONYMOUS, "parameters": [path_parameter("file", "app.js or app.css.")],
            "responses": {"200": {"description": "The file.", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}},
                "404": {"description": "Not one of the console's files."}}}},
    },
    "schemas": {
        "Status": {
            "type": "object", "required": ["status", "checked_at", "problems", "integrations", "queues", "dead_letters"],
            "properties": {
                "status": {"enum": ["ok", "attention"]}, "checked_at": TIME,
                "problems": {"type": "array", "items": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "integration_id": {"type": "string"},
                    "asset_id": {"type": "string"}, "queue": {"type": "string"}}}},
                "integrations": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "domains": {"type": "array", "items": {"type": "string"}},
                    "state": {"type": "string"}, "state_reason": {"type": ["string", "null"]},
                    "users": {"type": "object", "properties": {"active": {"type": "integer"}, "total": {"type": "integer"}}},
                    "user_sync": {"type": "object", "properties": {
                        "last_success_at": OPTIONAL_TIME, "last_outcome": {"type": ["string", "null"]},
                        "last_run_finished_at": OPTIONAL_TIME, "last_error": {"type": ["string", "null"]},
                        "last_error_at": OPTIONAL_TIME, "failing": {"type": "boolean"}, "guard_pending": {"type": "boolean"}}},
                    "warnings": {"type": "array", "items": {"type": "object"}},
                    "assets": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"}, "mailbox": {"type": "string"},
                        "state": {"enum": ["unsubscribed", "subscribed", "expired", "error"]},
                        "expires_at": OPTIONAL_TIME, "last_notification_at": OPTIONAL_TIME,
                        "last_resync_at": OPTIONAL_TIME, "last_success_at": OPTIONAL_TIME,
                        "last_error": {"type": ["string", "null"]}, "last_error_at": OPTIONAL_TIME}}},
                    "dead_letters": {"type": "integer"}}}},
                "queues": {"type": "array", "items": {"type": "object", "required": ["name", "role", "exists",
                                                                                      "approximate_messages"],
                                                      "properties": {
                    "name": {"type": "string"}, "role": {"enum": ["work", "poison", "published"]},
                    "exists": {"type": "boolean"}, "approximate_messages": {"type": "integer"},
                    "error": {"type": "string"}}}},
                "dead_letters": {"type": "object", "properties": {
                    "total": {"type": "integer"},
                    "by_partition": {"type": "object", "additionalProperties": {"type": "integer"}}}},
            },
        },
    },
}
