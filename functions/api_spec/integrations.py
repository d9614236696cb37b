"""Integrations (customer tenants) and the people synced from them."""
from __future__ import annotations

from functions.api_spec.common import (
    OPTIONAL_TIME, TIME, errors, json_body, nullable, path_parameter, query_parameter, ref, request_body,
)

INTEGRATION_ID = path_parameter("integration_id", "The integration's id (a GUID).")
OPTIONS = {"type": "object", "additionalProperties": False, "description": "Only the options sent change; "
           "null takes an option's default.", "properties": {
    "max_deactivation_share": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1,
                               "description": "A user sync that would deactivate more than this share of "
                                              "active people waits for a forced run (default: the app setting)."},
    "unknown_organizer": {"enum": ["guest", "decline", None], "default": "guest",
                          "description": "A room meeting organised by someone who is not an active person of "
                                         "this integration is booked with a guest organizer (guest) or declined "
                                         "on the room's side with a comment (decline)."},
    "recover_subject": {"type": ["boolean", "null"], "default": True,
                        "description": "When the room copy's subject is the organizer's name (Exchange's default), "
                                       "take the subject from the organizer's copy."},
    "decline_leaver_meetings": {"type": ["boolean", "null"], "default": True,
                                "description": "When a person leaves, decline on the room's side the future Outlook "
                                               "meetings they organised on our rooms (their reservations are "
                                               "cancelled either way)."}}}
WARNING = {"type": "object", "required": ["code", "message"], "additionalProperties": True,
           "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
QUEUED_SYNC = {"type": "object", "properties": {"run_id": {"type": ["string", "null"]}, "queued": {"type": "boolean"},
                                                  "message": {"type": "string"}}}

FRAGMENT = {
    "paths": {
        "/integrations": {
            "get": {"operationId": "integrations_list", "tags": ["integrations"], "summary": "List integrations",
                    "responses": {"200": json_body({"type": "object", "required": ["value"], "properties": {
                        "value": {"type": "array", "items": ref("Integration")}}}, "Every integration, oldest first."),
                        **errors(400, 401, 500)}},
            "post": {"operationId": "integrations_create", "tags": ["integrations"], "summary": "Connect a tenant",
                     "description": "The credentials are tried against Entra ID before anything is stored; a refusal "
                                    "names the field at fault (tenant_id, client_id or client_secret). The first "
                                    "user sync is queued.",
                     "requestBody": request_body(ref("NewIntegration")),
                     "responses": {"201": json_body(ref("CreatedIntegration"), "Connected."),
                                   **errors(400, 401, 409, 422, 500, 503)}},
        },
        "/integrations/{integration_id}": {
            "parameters": [INTEGRATION_ID],
            "get": {"operationId": "integrations_get", "tags": ["integrations"], "summary": "Read an integration",
                    "responses": {"200": json_body(ref("Integration"), "The integration."), **errors(400, 401, 404, 500)}},
            "patch": {"operationId": "integrations_update", "tags": ["integrations"],
                      "summary": "Replace the secret, its expiry or options",
                      "description": "A new secret is tried first; a parked integration resumes with a working one.",
                      "requestBody": request_body(ref("IntegrationPatch")),
                      "responses": {"200": json_body(ref("Integration"), "The changed integration."),
                                    **errors(400, 401, 404, 409, 422, 500, 503)}},
            "delete": {"operationId": "integrations_delete", "tags": ["integrations"],
                       "summary": "Remove an integration, its sync state and its people",
                       "description": "Hidden at once, purged by a queue worker; DELETE again re-queues the purge.",
                       "responses": {"202": json_body({"type": "object", "required": ["integration_id", "status"],
                                                       "properties": {"integration_id": {"type": "string"},
                                                                      "status": {"const": "deleting"},
                                                                      "purge_queued": {"type": "boolean"},
                                                                      "status_url": {"type": "string"}}},
                                                      "Deletion started; follow status_url."),
                                     **errors(400, 401, 404, 409, 500)}},
        },
        "/integrations/{integration_id}/status": {
            "parameters": [INTEGRATION_ID],
            "get": {"operationId": "integrations_status", "tags": ["integrations"],
                    "summary": "State, people counts and the last user sync",
                    "responses": {"200": json_body(ref("IntegrationStatus"), "The status."),
                                  **errors(400, 401, 404, 500)}},
        },
        "/integrations/{integration_id}/sync-users": {
            "parameters": [INTEGRATION_ID],
            "post": {"operationId": "integrations_sync_users", "tags": ["integrations"], "summary": "Sync people now",
                     "parameters": [query_parameter("force", "Run even past the mass-deactivation guard.",
                                                    {"type": "boolean"})],
                     "responses": {"202": json_body({"type": "object", "required": ["run_id", "status_url"],
                                                     "properties": {"integration_id": {"type": "string"},
                                                                    "run_id": {"type": "string"},
                                                                    "force": {"type": "boolean"},
                                                                    "status_url": {"type": "string"}}},
                                                    "Queued; follow status_url."),
                                   **errors(400, 401, 404, 409, 500, 503)}},
        },
        "/users": {
            "get": {"operationId": "users_list", "tags": ["people"], "summary": "People, page by page",
                    "parameters": [
                        query_parameter("integration_id", "Only this integration's people.", {"type": "string", "format": "uuid"}),
                        query_parameter("active", "Only active (true) or deactivated (false) people.", {"type": "boolean"}),
                        query_parameter("page_size", "At most this many (1-1000, default 100).",
                                        {"type": "integer", "minimum": 1, "maximum": 1000}),
                        query_parameter("continuation", "The token of the previous page."),
                    ],
                    "responses": {"200": json_body(ref("UserPage"), "A page; a short page may still continue."),
                                  **errors(400, 401, 404, 422, 500)}},
        },
    },
    "schemas": {
        "NewIntegration": {
            "type": "object", "additionalProperties": False,
            "required": ["tenant_id", "client_id", "client_secret"],
            "properties": {
                "domains": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 50,
                            "description": "Email domains of the people to sync (or `domain`, one)."},
                "domain": {"type": "string"},
                "tenant_id": {"type": "string", "format": "uuid"},
                "client_id": {"type": "string", "format": "uuid"},
                "client_secret": {"type": "string", "writeOnly": True, "description": "Never shown again."},
                "client_secret_expires_at": nullable({"type": "string", "description": "Date or date-time with offset."}),
                "options": OPTIONS,
            },
        },
        "IntegrationPatch": {
            "type": "object", "additionalProperties": False, "minProperties": 1,
            "properties": {"client_secret": {"type": "string", "writeOnly": True},
                           "client_secret_expires_at": nullable({"type": "string"}), "options": OPTIONS},
        },
        "Integration": {
            "type": "object",
            "required": ["id", "domains", "tenant_id", "client_id", "status", "mode", "granted_permissions"],
            "properties": {
                "id": {"type": "string"}, "domains": {"type": "array", "items": {"type": "string"}},
                "tenant_id": {"type": "string"}, "client_id": {"type": "string"},
                "client_secret_expires_at": OPTIONAL_TIME,
                "status": {"enum": ["active", "credentials_invalid", "paused"]},
                "status_reason": {"type": ["string", "null"]},
                "mode": {"enum": ["users_and_calendars", "users_only"]},
                "granted_permissions": {"type": "array", "items": {"type": "string"}},
                "options": OPTIONS, "created_at": TIME, "activated_at": OPTIONAL_TIME, "updated_at": TIME,
                "warnings": {"type": "array", "items": WARNING},
                "resumed_user_sync": QUEUED_SYNC,
            },
        },
        "CreatedIntegration": {"allOf": [ref("Integration"), {"type": "object", "properties": {
            "initial_user_sync": QUEUED_SYNC}}]},
        "IntegrationStatus": {
            "type": "object", "required": ["integration_id", "status", "users", "user_sync"],
            "properties": {
                "integration_id": {"type": "string"}, "status": {"type": "string"},
                "status_reason": {"type": ["string", "null"]}, "status_changed_at": OPTIONAL_TIME,
                "mode": {"type": "string"},
                "users": {"type": "object", "properties": {"active": {"type": "integer"}, "total": {"type": "integer"}}},
                "user_sync": {"type": "object", "properties": {
                    "last_run": {"type": ["object", "null"], "description": "run_id, trigger, kind, forced, "
                                 "started_at, finished_at, outcome, counts, graph_requests, table_transactions"},
                    "last_success_at": OPTIONAL_TIME, "last_error": {"type": ["string", "null"]},
                    "last_error_at": OPTIONAL_TIME, "guard": {"type": ["object", "null"]},
                    "running": {"type": "boolean"}, "delta_link_saved_at": OPTIONAL_TIME}},
                "secret_expires_at": OPTIONAL_TIME,
                "warnings": {"type": "array", "items": WARNING},
            },
        },
        "User": {
            "type": "object", "required": ["id", "integration_id", "email", "active"],
            "properties": {
                "id": {"type": "string"}, "integration_id": {"type": "string"},
                # null when no address of the person lies in a proven domain, or another integration holds it
                "email": {"type": ["string", "null"]},
                "mail": {"type": ["string", "null"]}, "user_principal_name": {"type": ["string", "null"]},
                "display_name": {"type": ["string", "null"]}, "given_name": {"type": ["string", "null"]},
                "surname": {"type": ["string", "null"]}, "department": {"type": ["string", "null"]},
                "job_title": {"type": ["string", "null"]}, "office_location": {"type": ["string", "null"]},
                "user_type": {"type": ["string", "null"]}, "account_enabled": {"type": ["boolean", "null"]},
                "active": {"type": "boolean"}, "deactivated_at": OPTIONAL_TIME,
                "deactivation_reason": {"type": ["string", "null"]}, "created_at": TIME, "updated_at": TIME,
            },
        },
        "UserPage": {"type": "object", "required": ["value", "continuation"], "properties": {
            "value": {"type": "array", "items": ref("User")}, "continuation": {"type": ["string", "null"]}}},
    },
}
