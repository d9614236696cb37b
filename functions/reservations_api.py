"""REST API for platform bookings (function key). Reads (GET) live with the assets API.

| Method | Route (under /api) | Body -> answer |
|---|---|---|
| POST | reservations | `{asset_id, booker (email or user id), start, end, time_zone?, subject, body?, private?, recurrence?, integration_id?}` -> 201 reservation (`sync_status: "pending"`; with `series` for a recurring one) |
| PATCH | reservations/{id}[?scope=occurrence\\|series] | any of `start`, `end`, `subject`, `body`, `private` -> 200 reservation |
| DELETE | reservations/{id}[?scope=occurrence\\|series] | -> 200 the cancelled reservation |

Rules live in sync/reservations.py; errors are `{"error": {"code", "message", "field"?}}` with
400/404/409/422 as the service chose.
"""
from __future__ import annotations

import azure.functions as func

from functions import booking_context
from functions.api import _answer, _body, _json
from sync.validation import reject_unknown_params

bp = func.Blueprint()


@bp.function_name("reservations_create")
@bp.route(route="reservations", methods=["POST"])
def create_reservation(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        reject_unknown_params(req.params, frozenset())
        view = booking_context.booking_service().create(_body(req))
        return _json(view, 201, {"Location": f"/api/reservations/{view['id']}"})
    return _answer(req, act)


@bp.function_name("reservations_change")
@bp.route(route="reservations/{reservation_id}", methods=["PATCH"])
def change_reservation(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        reject_unknown_params(req.params, frozenset({"scope"}))
        return _json(booking_context.booking_service().change(req.route_params.get("reservation_id"), _body(req),
                                                              req.params.get("scope")))
    return _answer(req, act)


@bp.function_name("reservations_cancel")
@bp.route(route="reservations/{reservation_id}", methods=["DELETE"])
def cancel_reservation(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        reject_unknown_params(req.params, frozenset({"scope"}))
        return _json(booking_context.booking_service().cancel(req.route_params.get("reservation_id"),
                                                              req.params.get("scope")))
    return _answer(req, act)
