"""The room sync: assets, their Graph subscriptions, resync and import, the tenant's rooms, the
read side of reservations, the sync log, dead letters, and Graph's webhooks (functions/rooms_api.py,
functions/webhooks.py)."""
from __future__ import annotations

from functions.api_spec.common import (
    ANONYMOUS, OPTIONAL_TIME, TIME, errors, json_body, path_parameter, query_parameter, ref, request_body,
)

ASSET_ID = path_parameter("asset_id", "The asset's id.")
RESERVATION_ID = path_parameter("reservation_id", "The reservation's id.")
DEAD_LETTER_ID = path_parameter("letter_id", "The dead letter's id, as the list shows it.")
LIST_OF = lambda name: {"type": "object", "required": ["value"],  # noqa: E731 -- a one-line schema builder
                        "properties": {"value": {"type": "array", "items": ref(name)}}}
VALIDATION = {"type": "string", "description": "Graph's validation handshake; answered as text/plain."}


def _webhook(operation_id: str, summary: str) -> dict:
    return {
        "post": {"operationId": operation_id, "tags": ["webhooks"], "summary": summary, "security": ANONYMOUS,
                 "description": "Graph sends no key. Each item is checked (subscription, clientState, tenant); "
                                "accepted ones are queued, rejected ones logged. The answer is 202 either way.",
                 "parameters": [query_parameter("validationToken", "Present on the validation handshake.")],
                 "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
                 "responses": {"200": {"description": "The decoded validation token.",
                                       "content": {"text/plain": {"schema": VALIDATION}}},
                               "202": {"description": "Accepted (whatever the items' verdicts)."},
                               "400": {"description": "Not JSON, over 1 MB, or `value` is not a list."}}},
    }


FRAGMENT = {
    "paths": {
        "/assets": {
            "get": {"operationId": "assets_list", "tags": ["assets"], "summary": "An integration's assets",
                    "parameters": [query_parameter("integration_id", "The integration.", required=True)],
                    "responses": {"200": json_body(LIST_OF("Asset"), "The assets."), **errors(400, 401, 404, 500)}},
            "post": {"operationId": "assets_create", "tags": ["assets"], "summary": "Link a room mailbox",
                     "description": "The mailbox is checked against Graph (exists, is a room or resource, readable).",
                     "requestBody": request_body({"oneOf": [ref("NewAsset"), ref("NewAssetFromRoom")]}),
                     "responses": {"201": json_body(ref("Asset"), "Created."), **errors(400, 401, 404, 409, 422, 500, 503)}},
        },
        "/assets/{asset_id}": {
            "parameters": [ASSET_ID],
            "get": {"operationId": "assets_get", "tags": ["assets"], "summary": "Read an asset",
                    "responses": {"200": json_body(ref("Asset"), "The asset."), **errors(400, 401, 404, 500)}},
            "patch": {"operationId": "assets_update", "tags": ["assets"], "summary": "Change name, category, zone, capacity",
                      "requestBody": request_body(ref("AssetPatch")),
                      "responses": {"200": json_body(ref("Asset"), "Changed."), **errors(400, 401, 404, 409, 422, 500)}},
            "delete": {"operationId": "assets_delete", "tags": ["assets"], "summary": "Unsubscribe and remove",
                       "responses": {"204": {"description": "Removed."}, **errors(400, 401, 404, 409, 500)}},
        },
        "/assets/{asset_id}/subscription": {
            "parameters": [ASSET_ID],
            "post": {"operationId": "assets_subscribe", "tags": ["assets"], "summary": "Subscribe to the room's calendar",
                     "description": "Replaces an existing subscription; the expiry is the longest Graph accepts.",
                     "responses": {"201": json_body(ref("SubscriptionState"), "Subscribed."),
                                   **errors(400, 401, 403, 404, 409, 422, 500, 503)}},
            "delete": {"operationId": "assets_unsubscribe", "tags": ["assets"], "summary": "Unsubscribe",
                       "responses": {"200": json_body(ref("SubscriptionState"), "Unsubscribed."),
                                     **errors(400, 401, 404, 500, 503)}},
        },
        "/assets/{asset_id}/resync": {
            "parameters": [ASSET_ID],
            "post": {"operationId": "assets_resync", "tags": ["assets"], "summary": "Re-read the room's calendar now",
                     "responses": {"202": json_body({"type": "object", "properties": {
                         "queued": {"type": "boolean"}, "asset_id": {"type": "string"}}}, "Queued."),
                         **errors(400, 401, 404, 500, 503)}},
        },
        "/assets/{asset_id}/import": {
            "parameters": [ASSET_ID],
            "post": {"operationId": "assets_import", "tags": ["assets"], "summary": "Import existing bookings",
                     "description": "A dry run (the default) reports what would be created, is already linked "
                                    "or conflicts, and changes nothing; `dry_run: false` applies the same.",
                     "requestBody": request_body({"type": "object", "required": ["from", "to"], "additionalProperties": False,
                                                  "properties": {"from": TIME, "to": TIME,
                                                                 "dry_run": {"type": "boolean", "default": True}}}),
                     "responses": {"200": json_body(ref("ImportReport"), "What was (or would be) done."),
                                   **errors(400, 401, 404, 422, 500, 503)}},
        },
        "/integrations/{integration_id}/rooms": {
            "parameters": [path_parameter("integration_id", "The integration's id.")],
            "get": {"operationId": "integrations_rooms", "tags": ["assets"], "summary": "The tenant's room list",
                    "responses": {"200": json_body(LIST_OF("Room"), "Rooms from /places/microsoft.graph.room."),
                                  **errors(400, 401, 403, 404, 500, 503)}},
        },
        "/reservations": {
            "get": {"operationId": "reservations_list", "tags": ["reservations"], "summary": "Reservations, paged",
                    "description": "Give `asset_id`, or `user` with `integration_id` (both: that person's "
                                   "bookings of that asset). Every filter applies before paging, so each page "
                                   "is full but the last. Ordered by `start`, then `id`, ascending; pass the "
                                   "answer's `continuation` to read on (null on the last page).",
                    "parameters": [query_parameter("asset_id", "Of this asset."),
                                   query_parameter("integration_id", "With `user`: the person's integration."),
                                   query_parameter("user", "Organised by this person (email or user id)."),
                                   query_parameter("from", "Overlapping the window from here: ending after it.", TIME),
                                   query_parameter("to", "Overlapping the window up to here: starting before it.", TIME),
                                   query_parameter("day", "Overlapping one day in the asset's own zone (YYYY-MM-DD); "
                                                   "not with from/to.", {"type": "string", "format": "date"}),
                                   query_parameter("page_size", "At most this many.", {"type": "integer", "minimum": 1}),
                                   query_parameter("continuation", "The previous page's token; a token this API did not "
                                                   "hand out is 400 naming `continuation`.")],
                    "responses": {"200": json_body({"type": "object", "required": ["value", "continuation"], "properties": {
                        "value": {"type": "array", "items": ref("Reservation")},
                        "continuation": {"type": ["string", "null"]}}}, "A page."), **errors(400, 401, 404, 422, 500)}},
        },
        "/reservations/{reservation_id}": {
            "parameters": [RESERVATION_ID],
            "get": {"operationId": "reservations_get", "tags": ["reservations"], "summary": "Read a reservation",
                    "responses": {"200": json_body(ref("Reservation"), "The reservation."), **errors(400, 401, 404, 500)}},
        },
        "/synclog": {
            "get": {"operationId": "synclog_list", "tags": ["sync log"], "summary": "What the sync decided and why",
                    "parameters": [query_parameter("integration_id", "The integration.", required=True),
                                   query_parameter("asset_id", "Only this asset."),
                                   query_parameter("reservation_id", "Only this reservation."),
                                   query_parameter("days", "How many days back (default 7).", {"type": "integer", "minimum": 1})],
                    "responses": {"200": json_body(LIST_OF("SyncLogEntry"), "Newest first."), **errors(400, 401, 404, 500)}},
        },
        "/deadletters": {
            "get": {"operationId": "deadletters_list", "tags": ["sync log"], "summary": "Messages that failed every retry",
                    "parameters": [query_parameter("integration_id", "The integration.")],
                    "responses": {"200": json_body(LIST_OF("DeadLetter"), "The dead letters."), **errors(400, 401, 404, 500)}},
        },
        "/deadletters/{letter_id}": {
            "parameters": [DEAD_LETTER_ID],
            "delete": {"operationId": "deadletters_discard", "tags": ["sync log"], "summary": "Discard",
                       "responses": {"204": {"description": "Discarded."}, **errors(400, 401, 404, 500)}},
        },
        "/deadletters/{letter_id}/retry": {
            "parameters": [DEAD_LETTER_ID],
            "post": {"operationId": "deadletters_retry", "tags": ["sync log"], "summary": "Put back on its queue",
                     "responses": {"202": json_body({"type": "object", "properties": {
                         "queued": {"type": "boolean"}, "queue": {"type": "string"}}}, "Put back on its queue."),
                         **errors(400, 401, 404, 422, 500, 503)}},
        },
        "/microsoft_graph/notifications/notification_url": _webhook("graph_notifications", "Graph change notifications"),
        "/microsoft_graph/notifications/lifecycle_url": _webhook("graph_lifecycle", "Graph lifecycle notifications"),
    },
    "schemas": {
        "NewAsset": {"type": "object", "required": ["integration_id", "mailbox"], "properties": {
            "integration_id": {"type": "string"}, "name": {"type": "string"}, "category": {"type": "string"},
            "mailbox": {"type": "string", "format": "email"}, "time_zone": {"type": "string"},
            "capacity": {"type": "integer", "minimum": 0}, "max_duration_minutes": {"type": "integer", "minimum": 1}}},
        "NewAssetFromRoom": {"type": "object", "required": ["integration_id", "room"], "properties": {
            "integration_id": {"type": "string"}, "room": {"type": "string", "format": "email"},
            "name": {"type": "string"}, "category": {"type": "string"}, "time_zone": {"type": "string"},
            "capacity": {"type": "integer", "minimum": 0}, "max_duration_minutes": {"type": "integer", "minimum": 1}}},
        "AssetPatch": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
            "name": {"type": "string"}, "category": {"type": "string"}, "time_zone": {"type": "string"},
            "capacity": {"type": ["integer", "null"]}, "max_duration_minutes": {"type": ["integer", "null"]}}},
        "SubscriptionState": {"type": "object", "required": ["state"], "properties": {
            "state": {"enum": ["unsubscribed", "subscribed", "expired", "error"]}, "id": {"type": ["string", "null"]},
            "expires_at": OPTIONAL_TIME, "subscribed_at": OPTIONAL_TIME, "last_notification_at": OPTIONAL_TIME,
            "last_error": {"type": ["string", "null"]}, "last_error_at": OPTIONAL_TIME}},
        "Asset": {"type": "object", "required": ["id", "integration_id", "name", "mailbox", "subscription"], "properties": {
            "id": {"type": "string"}, "integration_id": {"type": "string"}, "name": {"type": "string"},
            "category": {"type": "string"}, "mailbox": {"type": "string"}, "time_zone": {"type": "string"},
            "capacity": {"type": ["integer", "null"]}, "max_duration_minutes": {"type": ["integer", "null"]},
            "subscription": ref("SubscriptionState"), "created_at": TIME, "updated_at": TIME}},
        "Room": {"type": "object", "required": ["email"], "properties": {
            "email": {"type": "string"}, "display_name": {"type": ["string", "null"]},
            "capacity": {"type": ["integer", "null"]}, "building": {"type": ["string", "null"]}}},
        "ImportReport": {"type": "object", "required": ["created", "linked", "conflicts"], "properties": {
            "dry_run": {"type": "boolean"}, "from": {"type": "string"}, "to": {"type": "string"},
            "skipped": {"type": "array", "items": {"type": "object"}},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "created": {"type": "array", "items": {"type": "object"}},
            "linked": {"type": "array", "items": {"type": "object"}},
            "conflicts": {"type": "array", "items": {"type": "object"}}}},
        "Reservation": {"type": "object",
                        "required": ["id", "integration_id", "asset_id", "start", "end", "time_zone", "subject",
                                     "organizer", "origin", "status", "sync_status", "series_id", "occurrence_start",
                                     "private", "created_at", "updated_at"],
                        "properties": {
            "id": {"type": "string"}, "integration_id": {"type": "string"}, "asset_id": {"type": "string"},
            "start": TIME, "end": TIME, "time_zone": {"type": "string"}, "subject": {"type": "string"},
            "organizer": {"type": "object", "required": ["email", "user_id", "name"], "additionalProperties": False,
                          "properties": {"email": {"type": ["string", "null"]},
                                         "user_id": {"type": ["string", "null"]},
                                         "name": {"type": ["string", "null"]}}},
            "origin": {"enum": ["outlook", "platform"]}, "status": {"enum": ["confirmed", "cancelled", "declined"]},
            "sync_status": {"type": "string"},
            "sync_reason": {"type": ["string", "null"],
                            "description": "Why the sync declined or could not apply it (null when nothing to say)."},
            "series_id": {"type": ["string", "null"]}, "occurrence_start": OPTIONAL_TIME,
            "private": {"type": "boolean"}, "created_at": TIME, "updated_at": TIME,
            "series": {"type": "object", "description": "Booking a series only: the series made."},
            "occurrences_changed": {"type": "integer", "description": "Changing a series only: how many moved."}}},
        "SyncLogEntry": {"type": "object", "required": ["at", "decision", "outcome"], "properties": {
            "at": TIME, "integration_id": {"type": "string"}, "asset_id": {"type": ["string", "null"]},
            "reservation_id": {"type": ["string", "null"]}, "input": {"type": "object"},
            "decision": {"type": "string"}, "reason": {"type": ["string", "null"]},
            "graph_calls": {"type": "integer"}, "outcome": {"type": "string"}}},
        "DeadLetter": {"type": "object", "required": ["id", "queue"], "properties": {
            "id": {"type": "string"}, "queue": {"type": "string"}, "integration_id": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]}, "message": {"type": ["string", "null"], "description": "The message text."},
            "at": OPTIONAL_TIME, "dequeue_count": {"type": ["integer", "null"]}}},
    },
}
