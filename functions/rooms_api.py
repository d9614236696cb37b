"""REST API of the room sync (function key): assets, their subscriptions, resync and import,
the tenant's rooms, reservations (read side), the sync log and dead letters.

| Method | Route (under /api) | Body -> answer |
|---|---|---|
| GET | integrations/{id}/rooms | -> `{"value": [{email, display_name, capacity, building}]}`; 403 naming Place.Read.All when not granted |
| POST | assets | `{integration_id, name?, category?, mailbox, time_zone?, capacity?, max_duration_minutes?}` or `{integration_id, room: email, ...}` -> 201 asset (mailbox checked against Graph first) |
| GET | assets?integration_id= | -> `{"value": [asset...]}` |
| GET, PATCH, DELETE | assets/{id} | -> asset / asset / 204: unlinks the room (unsubscribes first, then forgets its reservations and calendar state; no reservation events, since the platform deleting the asset drops its bookings itself, and Outlook meetings stay: the room is still a mailbox in Exchange) |
| POST, DELETE | assets/{id}/subscription | -> `{state, expires_at, subscribed_at, ...}` |
| POST | assets/{id}/resync | -> 202 `{queued: true}` |
| POST | assets/{id}/import | `{from, to, dry_run?=true}` -> `{created, linked, conflicts, skipped, counts}` |
| GET | reservations?asset_id=&from=&to= / &day= / ?integration_id=&user= (email or user id), page_size, continuation | -> `{"value": [reservation...], "continuation"}` |
| GET | reservations/{id} | -> reservation |
| GET | synclog?integration_id=&asset_id=&reservation_id=&days= | -> `{"value": [entry...]}` newest first |
| GET | deadletters?integration_id= | -> `{"value": [dead letter...]}` |
| POST | deadletters/{id}/retry | -> 202 (the message is put back on its queue, the copy removed) |
| DELETE | deadletters/{id} | -> 204 |
"""
from __future__ import annotations

import json

import azure.functions as func

from functions import room_context
from functions.api import _JSON_HEADERS, _answer, _body, _json, _no_params
from sync.validation import Problem, reject_unknown_params

bp = func.Blueprint()


def _asset(req: func.HttpRequest):
    return room_context.asset_service().get(req.route_params.get("asset_id"))


def _integration_of(asset):
    return room_context.live_integration()(asset.integration_id)


@bp.function_name("integrations_rooms")
@bp.route(route="integrations/{integration_id}/rooms", methods=["GET"])
def list_rooms(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        return _json({"value": room_context.asset_service().rooms(req.route_params.get("integration_id"))})
    return _answer(req, act)


@bp.function_name("assets_create")
@bp.route(route="assets", methods=["POST"])
def create_asset(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        view = room_context.asset_service().create(_body(req))
        return _json(view, 201, {"Location": f"/api/assets/{view['id']}"})
    return _answer(req, act)


@bp.function_name("assets_list")
@bp.route(route="assets", methods=["GET"])
def list_assets(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        reject_unknown_params(req.params, frozenset({"integration_id"}))
        return _json({"value": room_context.asset_service().list(req.params.get("integration_id"))})
    return _answer(req, act)


@bp.function_name("assets_get")
@bp.route(route="assets/{asset_id}", methods=["GET"])
def get_asset(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        return _json(room_context.asset_service().view(req.route_params.get("asset_id")))
    return _answer(req, act)


@bp.function_name("assets_update")
@bp.route(route="assets/{asset_id}", methods=["PATCH"])
def update_asset(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        return _json(room_context.asset_service().update(req.route_params.get("asset_id"), _body(req)))
    return _answer(req, act)


@bp.function_name("assets_delete")
@bp.route(route="assets/{asset_id}", methods=["DELETE"])
def delete_asset(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        asset = _asset(req)
        integration = _integration_of(asset)
        room_context.subscription_service().unsubscribe(integration, asset)
        room_context.reservations_repo().purge_asset(asset.integration_id, asset.id)
        room_context.calendar_state().delete(asset.integration_id, asset.id)
        room_context.assets_repo().delete(room_context.assets_repo().get_in(asset.integration_id, asset.id))
        return func.HttpResponse(status_code=204, headers=_JSON_HEADERS)
    return _answer(req, act)


@bp.function_name("assets_subscribe")
@bp.route(route="assets/{asset_id}/subscription", methods=["POST"])
def subscribe(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        asset = _asset(req)
        return _json(room_context.subscription_service().subscribe(_integration_of(asset), asset), 201)
    return _answer(req, act)


@bp.function_name("assets_unsubscribe")
@bp.route(route="assets/{asset_id}/subscription", methods=["DELETE"])
def unsubscribe(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        asset = _asset(req)
        return _json(room_context.subscription_service().unsubscribe(_integration_of(asset), asset))
    return _answer(req, act)


@bp.function_name("assets_resync")
@bp.route(route="assets/{asset_id}/resync", methods=["POST"])
def resync(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        asset = _asset(req)
        room_context.request_resync(asset.integration_id, asset.id, "admin")
        return _json({"queued": True, "asset_id": asset.id}, 202)
    return _answer(req, act)


@bp.function_name("assets_import")
@bp.route(route="assets/{asset_id}/import", methods=["POST"])
def import_bookings(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        asset = _asset(req)
        return _json(room_context.imports().run(_integration_of(asset), asset, _body(req)))
    return _answer(req, act)


@bp.function_name("reservations_list")
@bp.route(route="reservations", methods=["GET"])
def list_reservations(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda: _json(room_context.reservation_reads().list(dict(req.params))))


@bp.function_name("reservations_get")
@bp.route(route="reservations/{reservation_id}", methods=["GET"])
def get_reservation(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        return _json(room_context.reservation_reads().get(req.route_params.get("reservation_id")))
    return _answer(req, act)


@bp.function_name("synclog_list")
@bp.route(route="synclog", methods=["GET"])
def synclog(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda: _json(room_context.reservation_reads().log(dict(req.params))))


@bp.function_name("deadletters_list")
@bp.route(route="deadletters", methods=["GET"])
def deadletters(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        reject_unknown_params(req.params, frozenset({"integration_id"}))
        integration_id = req.params.get("integration_id")
        if integration_id:
            room_context.live_integration()(integration_id)
        return _json({"value": [d.view() for d in room_context.deadletters().list(integration_id or None)]})
    return _answer(req, act)


def _letter(req: func.HttpRequest):
    letter = room_context.deadletters().get(req.route_params.get("letter_id") or "")
    if letter is None:
        raise Problem(404, "not_found", "no such dead letter")
    return letter


@bp.function_name("deadletters_retry")
@bp.route(route="deadletters/{letter_id}/retry", methods=["POST"])
def retry_deadletter(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        letter = _letter(req)
        try:
            body = json.loads(letter.message)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Problem(422, "not_retryable", "the message is not a JSON object; discard it instead")
        room_context.publisher(letter.queue).send(body)
        room_context.deadletters().discard(letter)
        return _json({"queued": True, "queue": letter.queue}, 202)
    return _answer(req, act)


@bp.function_name("deadletters_discard")
@bp.route(route="deadletters/{letter_id}", methods=["DELETE"])
def discard_deadletter(req: func.HttpRequest) -> func.HttpResponse:
    def act():
        _no_params(req)
        room_context.deadletters().discard(_letter(req))
        return func.HttpResponse(status_code=204, headers=_JSON_HEADERS)
    return _answer(req, act)
