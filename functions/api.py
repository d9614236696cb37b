"""REST API for admins: integrations (connect, list, change, remove, status, sync users) and the
people synced from them. Function-level key (the app's default auth level).

| Method | Route (under /api) | Body -> answer |
|---|---|---|
| POST | integrations | `{"domains": [..] or "domain", "tenant_id", "client_id", "client_secret", "client_secret_expires_at"?, "options"?: {"max_deactivation_share", "unknown_organizer" (guest or decline), "recover_subject", "decline_leaver_meetings"}}` -> 201 integration + `initial_user_sync: {run_id, queued}`; 409 `duplicate_tenant` / `duplicate_domain` (also under concurrent connects) or `integration_deleting` |
| GET | integrations | -> `{"value": [integration...]}` (integrations being deleted are left out) |
| GET | integrations/{id} | -> integration |
| PATCH | integrations/{id} | any of `client_secret`, `client_secret_expires_at`, `options` -> integration (+ `resumed_user_sync` when a parked one resumes) |
| DELETE | integrations/{id} | -> 202 `{integration_id, status: "deleting", purge_queued, status_url}`; the integration is hidden at once and purged by the integration-purge worker; DELETE again re-queues the purge |
| GET | integrations/{id}/status | -> status, reason, users counts, last run (counts, cost), last error, Entra token error (`aadsts`, `repeats`), guard, domains and their proofs, warnings; while deleting only `{status: "deleting", deletion: {requested_at, completed_steps, pending_steps}}`; 404 once the purge finished |
| POST | integrations/{id}/sync-users[?force=true] | -> 202 `{run_id, force, status_url}`; 409 while parked |
| GET | users[?integration_id&active&page_size&continuation] | -> `{"value": [user...], "continuation": token or null}`; never people of an integration being deleted |

An integration shows `domains` (as sent), `domain_proofs: [{name, proven, proof}]` with `proof`
`"organization"` (listed in the tenant's verified domains, needs Organization.Read.All),
`"upn"` (people of the tenant sign in with it) or null, `unproven_domains` (their people are not
activated), and `optional_permissions: [{permission, granted, enables}]`, which says whether
Organization.Read.All was granted and what it adds.

Each function parses its input, calls one service (sync.integrations, sync.users) and shapes
the answer: JSON, with errors as {"error": {"code", "message", "field"?...}} and the status
the service chose. Unexpected failures answer 500 without details (they are in the logs).
An integration is never shown with its client secret. Anything under an integration that is
being deleted answers 404 (`sync.live_integrations.require_live_integration`).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

import azure.functions as func

from functions import context
from sync import logcontext
from sync.validation import Problem, flag, parse_json_object, reject_unknown_params

log = logging.getLogger(__name__)

bp = func.Blueprint()

_JSON_HEADERS = {"Cache-Control": "no-store"}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={**_JSON_HEADERS, **(headers or {})})


def _answer(req: func.HttpRequest, action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Runs the action with its ids bound to the log context and the correlation id echoed in
    `x-correlation-id`; refusals become their JSON error, anything else a bare 500."""
    named = {**req.params, **req.route_params}  # a route's own ids win over the query's
    with logcontext.bind(correlation_id=logcontext.correlation_from_headers(req.headers),
                         integration_id=logcontext.safe_id(named.get("integration_id")),
                         asset_id=logcontext.safe_id(named.get("asset_id")),
                         reservation_id=logcontext.safe_id(named.get("reservation_id"))) as bound:
        response = _attempt(req, action)
        response.headers["x-correlation-id"] = bound["correlation_id"]
        return response


def _attempt(req: func.HttpRequest, action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    try:
        return action()
    except Problem as problem:
        log.info("%s %s refused: %d %s%s", req.method, _route(req), problem.status, problem.code,
                 f" ({problem.field})" if problem.field else "")
        return _json(problem.as_body(), problem.status)
    except Exception:
        log.exception("%s %s failed", req.method, _route(req))
        return _json({"error": {"code": "internal_error", "message": "the request failed; see the logs"}}, 500)


def _route(req: func.HttpRequest) -> str:
    """The path without the query string (which may carry the function key)."""
    return req.url.split("?", 1)[0].split("://", 1)[-1].partition("/")[2]


def _body(req: func.HttpRequest) -> dict[str, Any]:
    return parse_json_object(req.get_body())


def _no_params(req: func.HttpRequest) -> None:
    reject_unknown_params(req.params, frozenset())


@bp.function_name("integrations_create")
@bp.route(route="integrations", methods=["POST"])
def create_integration(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        _no_params(req)
        view = context.integration_service().create(_body(req))
        return _json(view, 201, {"Location": f"/api/integrations/{view['id']}"})
    return _answer(req, act)


@bp.function_name("integrations_list")
@bp.route(route="integrations", methods=["GET"])
def list_integrations(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        _no_params(req)
        return _json({"value": context.integration_service().list()})
    return _answer(req, act)


@bp.function_name("integrations_get")
@bp.route(route="integrations/{integration_id}", methods=["GET"])
def get_integration(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        _no_params(req)
        return _json(context.integration_service().get(req.route_params.get("integration_id")))
    return _answer(req, act)


@bp.function_name("integrations_update")
@bp.route(route="integrations/{integration_id}", methods=["PATCH"])
def update_integration(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        _no_params(req)
        return _json(context.integration_service().update(req.route_params.get("integration_id"), _body(req)))
    return _answer(req, act)


@bp.function_name("integrations_delete")
@bp.route(route="integrations/{integration_id}", methods=["DELETE"])
def delete_integration(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        _no_params(req)
        accepted = context.integration_service().delete(req.route_params.get("integration_id"))
        return _json(accepted, 202, {"Location": f"/api/{accepted['status_url']}"})
    return _answer(req, act)


@bp.function_name("integrations_status")
@bp.route(route="integrations/{integration_id}/status", methods=["GET"])
def integration_status(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        _no_params(req)
        return _json(context.integration_service().status(req.route_params.get("integration_id")))
    return _answer(req, act)


@bp.function_name("integrations_sync_users")
@bp.route(route="integrations/{integration_id}/sync-users", methods=["POST"])
def sync_users(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        reject_unknown_params(req.params, frozenset({"force"}))
        force = bool(flag("force", req.params.get("force")))
        accepted = context.integration_service().request_user_sync(req.route_params.get("integration_id"),
                                                                   force=force)
        return _json(accepted, 202, {"Location": f"/api/{accepted['status_url']}"})
    return _answer(req, act)


@bp.function_name("users_list")
@bp.route(route="users", methods=["GET"])
def list_users(req: func.HttpRequest) -> func.HttpResponse:
    def act() -> func.HttpResponse:
        return _json(context.user_listing().page(dict(req.params)))
    return _answer(req, act)
