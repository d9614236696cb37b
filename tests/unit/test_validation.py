"""What the REST API accepts, and the field and status it names when it does not."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sync import validation
from sync.validation import UNSET, Problem

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
TENANT = "0D3C5E2A-7B1F-4C8E-9A6D-2F4B8C1E5A70"
CLIENT = "6a1f2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
SECRET = "abc8Q~a-secret.value_with~odd-chars"


def body(**changes):
    data = {"domains": ["Contoso.com", "fabrikam.co.uk"], "tenant_id": TENANT, "client_id": CLIENT,
            "client_secret": SECRET}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def refused(data, now=NOW) -> Problem:
    with pytest.raises(Problem) as caught:
        validation.new_integration(data, now)
    problem = caught.value
    assert problem.as_body()["error"]["code"] == problem.code
    assert SECRET not in problem.message
    return problem


def test_a_good_body_is_normalised():
    draft = validation.new_integration(body(client_secret_expires_at="2026-01-31",
                                            options={"max_deactivation_share": 0.5}), NOW)
    assert draft.domains == ("contoso.com", "fabrikam.co.uk")
    assert draft.tenant_id == TENANT.lower() and draft.client_id == CLIENT
    assert draft.secret_expires_at == datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert draft.options == {"max_deactivation_share": 0.5}
    assert SECRET not in repr(draft)


def test_one_domain_may_be_given_as_domain():
    draft = validation.new_integration(body(domains=..., domain="Contoso.COM."), NOW)
    assert draft.domains == ("contoso.com",)


def test_duplicate_domains_collapse():
    assert validation.new_integration(body(domains=["a.com", "A.com"]), NOW).domains == ("a.com",)


@pytest.mark.parametrize("changes, status, field", [
    ({"tenant_id": ...}, 400, "tenant_id"),
    ({"client_id": 12}, 400, "client_id"),
    ({"client_secret": ...}, 400, "client_secret"),
    ({"domains": ...}, 400, "domains"),
    ({"domains": "contoso.com"}, 400, "domains"),
    ({"domains": ["contoso.com"], "domain": "contoso.com"}, 400, "domains"),
    ({"colour": "blue"}, 400, "colour"),
    ({"options": []}, 400, "options"),
    ({"options": {"speed": 1}}, 400, "options.speed"),
    ({"options": {"max_deactivation_share": "20%"}}, 400, "options.max_deactivation_share"),
    ({"client_secret_expires_at": 20260101}, 400, "client_secret_expires_at"),
    ({"tenant_id": "contoso.onmicrosoft.com"}, 422, "tenant_id"),
    ({"tenant_id": "0d3c5e2a7b1f4c8e9a6d2f4b8c1e5a70"}, 422, "tenant_id"),
    ({"client_id": "not-a-guid"}, 422, "client_id"),
    ({"client_secret": ""}, 422, "client_secret"),
    ({"client_secret": " " + SECRET}, 422, "client_secret"),
    ({"client_secret": "a\nb"}, 422, "client_secret"),
    ({"domains": []}, 422, "domains"),
    ({"domains": ["https://contoso.com"]}, 422, "domains[0]"),
    ({"domains": ["contoso.com", "ann@contoso.com"]}, 422, "domains[1]"),
    ({"domains": ["localhost"]}, 422, "domains[0]"),
    ({"domains": ["-bad.com"]}, 422, "domains[0]"),
    ({"domains": ["contoso.c0m"]}, 422, "domains[0]"),
    ({"domains": ["a" * 64 + ".com"]}, 422, "domains[0]"),
    ({"domains": [7]}, 400, "domains[0]"),
    ({"client_secret_expires_at": "2025-02-01"}, 422, "client_secret_expires_at"),
    ({"client_secret_expires_at": "next tuesday"}, 422, "client_secret_expires_at"),
    ({"client_secret_expires_at": "2026-01-01T00:00:00"}, 422, "client_secret_expires_at"),
    ({"options": {"max_deactivation_share": 0}}, 422, "options.max_deactivation_share"),
    ({"options": {"max_deactivation_share": 1.5}}, 422, "options.max_deactivation_share"),
])
def test_refusals_name_the_field(changes, status, field):
    problem = refused(body(**changes))
    assert (problem.status, problem.field) == (status, field)
    assert field in problem.message


def test_punycode_domains_are_domains():
    assert validation.new_integration(body(domains=["xn--bcher-kva.example"]), NOW).domains == ("xn--bcher-kva.example",)


@pytest.mark.parametrize("raw, code", [(b"", "invalid_json"), (b"{", "invalid_json"), (b"[1]", "invalid_json"),
                                       (b"\xff\xfe", "invalid_json")])
def test_bodies_must_be_json_objects(raw, code):
    with pytest.raises(Problem) as caught:
        validation.parse_json_object(raw)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_patch_takes_only_what_is_sent():
    patch = validation.integration_patch({"options": {"max_deactivation_share": None}}, NOW)
    assert patch.client_secret is None and patch.secret_expires_at is UNSET
    assert patch.options == {"max_deactivation_share": None}
    patch = validation.integration_patch({"client_secret": SECRET, "client_secret_expires_at": None}, NOW)
    assert patch.client_secret == SECRET and patch.secret_expires_at is None and SECRET not in repr(patch)


@pytest.mark.parametrize("data, status, field", [
    ({}, 400, None), ({"domains": ["a.com"]}, 400, "domains"), ({"client_secret": 5}, 400, "client_secret"),
])
def test_patch_refusals(data, status, field):
    with pytest.raises(Problem) as caught:
        validation.integration_patch(data, NOW)
    assert (caught.value.status, caught.value.field) == (status, field)


def test_query_parameters():
    assert validation.flag("force", "TRUE") is True and validation.flag("force", None) is False
    assert validation.flag("active", None, default=None) is None
    assert validation.page_size(None) == validation.DEFAULT_PAGE_SIZE and validation.page_size("1000") == 1000
    for raw, status in (("0", 422), ("1001", 422), ("ten", 400), ("-1", 400)):
        with pytest.raises(Problem) as caught:
            validation.page_size(raw)
        assert (caught.value.status, caught.value.field) == (status, "page_size")
    with pytest.raises(Problem) as caught:
        validation.flag("force", "perhaps")
    assert (caught.value.status, caught.value.field) == (400, "force")
    with pytest.raises(Problem) as caught:
        validation.reject_unknown_params({"code": "key", "forse": "true"}, frozenset({"force"}))
    assert caught.value.field == "forse"


def test_route_ids_that_are_not_guids_are_not_found():
    assert validation.integration_id(TENANT) == TENANT.lower()
    for value in ("", "../etc", "x" * 36, None):
        with pytest.raises(Problem) as caught:
            validation.integration_id(value)
        assert caught.value.status == 404
