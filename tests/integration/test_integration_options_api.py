"""The integration's room policy options through the REST API: set at connect, changed one at a
time by PATCH, shown by GET, kept across reads from Azure Tables, and a bad value refused with
the field named."""
from __future__ import annotations

import uuid

import pytest

from tests.integration.test_integrations_api import app, call, create, sync_queue  # noqa: F401  (fixtures)
from tests.support.emulator_fixture import new_tenant

DEFAULTS = {"unknown_organizer": "guest", "recover_subject": True, "decline_leaver_meetings": True}


def _get(app, integration_id: str) -> dict:
    status, body, _ = call(app, "integrations_get", "GET", "x", route={"integration_id": integration_id})
    assert status == 200, body
    return body["options"]


def _patch(app, integration_id: str, options: dict) -> tuple[int, dict]:
    status, body, _ = call(app, "integrations_update", "PATCH", "x", {"options": options},
                           route={"integration_id": integration_id})
    return status, body


def test_options_are_set_at_connect_changed_one_at_a_time_and_reset_by_null(app, sync_queue, graph_emulator):
    tenant = new_tenant(graph_emulator, users=1)
    chosen = {"unknown_organizer": "decline", "recover_subject": False, "decline_leaver_meetings": False}
    status, created, _ = create(app, tenant, options=chosen)
    assert status == 201, created
    assert {key: created["options"][key] for key in chosen} == chosen
    assert {key: _get(app, created["id"])[key] for key in chosen} == chosen

    status, body = _patch(app, created["id"], {"unknown_organizer": "guest"})
    assert status == 200, body
    assert {key: _get(app, created["id"])[key] for key in chosen} == {**chosen, "unknown_organizer": "guest"}

    status, body = _patch(app, created["id"], {"recover_subject": None, "decline_leaver_meetings": None,
                                               "max_deactivation_share": 0.4})
    assert status == 200, body
    assert _get(app, created["id"]) == {**DEFAULTS, "max_deactivation_share": 0.4}


def test_a_connect_without_options_shows_the_defaults(app, sync_queue, graph_emulator):
    status, created, _ = create(app, new_tenant(graph_emulator, users=1))
    assert status == 201, created
    assert created["options"] == {**DEFAULTS, "max_deactivation_share": None}


BAD_OPTIONS = [
    ({"unknown_organizer": "reject"}, 422, "options.unknown_organizer"),
    ({"unknown_organizer": "Guest"}, 422, "options.unknown_organizer"),
    ({"unknown_organizer": True}, 400, "options.unknown_organizer"),
    ({"recover_subject": "no"}, 400, "options.recover_subject"),
    ({"recover_subject": 0}, 400, "options.recover_subject"),
    ({"decline_leaver_meetings": "true"}, 400, "options.decline_leaver_meetings"),
    ({"decline_leaver_meetings": 1}, 400, "options.decline_leaver_meetings"),
    ({"decline_leavers": False}, 400, "options.decline_leavers"),
]


@pytest.mark.parametrize("options, status, field", BAD_OPTIONS)
def test_a_bad_option_at_connect_is_refused_naming_it(app, options, status, field):
    body = {"domains": ["options-test.example"], "tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
            "client_secret": "not-tried-because-the-options-are-wrong", "options": options}
    answer, error, _ = call(app, "integrations_create", "POST", "integrations", body)
    assert (answer, error["error"]["field"]) == (status, field)
    assert field in error["error"]["message"]


@pytest.mark.parametrize("options, status, field", BAD_OPTIONS)
def test_a_bad_option_in_a_patch_is_refused_naming_it_and_changes_nothing(app, sync_queue, graph_emulator, options,
                                                                         status, field):
    status_created, created, _ = create(app, new_tenant(graph_emulator, users=1),
                                        options={"unknown_organizer": "decline"})
    assert status_created == 201, created
    answer, error = _patch(app, created["id"], {"recover_subject": False, **options})
    assert (answer, error["error"]["field"]) == (status, field)
    assert _get(app, created["id"])["recover_subject"] is True
    assert _get(app, created["id"])["unknown_organizer"] == "decline"
