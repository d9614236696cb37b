"""Booking through the platform (the outbound side): creating, moving and cancelling reservations,
described ahead of its routes. Listed in PENDING until they are registered; then move it to SERVED
and the route test holds it to them."""
from __future__ import annotations

from functions.api_spec.common import TIME, errors, json_body, path_parameter, query_parameter, ref, request_body

SCOPE = query_parameter("scope", "For a recurring reservation: this occurrence only, or the whole series.",
                        {"enum": ["occurrence", "series"]})

FRAGMENT = {
    "paths": {
        "/reservations": {
            "post": {"operationId": "reservations_create", "tags": ["reservations"], "summary": "Book",
                     "description": "Checked under the asset's lock (an overlap is 409 naming it); the meeting is "
                                    "then created in the booker's calendar, so the answer says `sync_status: pending`.",
                     "requestBody": request_body(ref("NewReservation")),
                     "responses": {"201": json_body(ref("Reservation"), "Booked; sync_status pending."),
                                   **errors(400, 401, 404, 409, 422, 500)}},
        },
        "/reservations/{reservation_id}": {
            "parameters": [path_parameter("reservation_id", "The reservation's id.")],
            "patch": {"operationId": "reservations_change", "tags": ["reservations"], "summary": "Move or rename",
                      "parameters": [SCOPE],
                      "requestBody": request_body({"type": "object", "minProperties": 1, "properties": {
                          "start": TIME, "end": TIME, "subject": {"type": "string"}}}),
                      "responses": {"200": json_body(ref("Reservation"), "Changed."), **errors(400, 401, 404, 409, 422, 500)}},
            "delete": {"operationId": "reservations_cancel", "tags": ["reservations"], "summary": "Cancel",
                       "parameters": [SCOPE],
                       "responses": {"200": json_body(ref("Reservation"), "Cancelled."), **errors(400, 401, 404, 409, 500)}},
        },
    },
    "schemas": {
        "NewReservation": {"type": "object", "required": ["asset_id", "booker", "start", "end", "subject"], "properties": {
            "asset_id": {"type": "string"}, "booker": {"type": "string", "description": "Email or user id."},
            "start": TIME, "end": TIME, "time_zone": {"type": "string"}, "subject": {"type": "string"},
            "body": {"type": "string"}, "private": {"type": "boolean"},
            "recurrence": {"type": "object", "description": "Graph's patternedRecurrence (pattern and range)."}}},
    },
}
