"""`/users`, `/users/{id}` and `/users/delta` as Graph documents them (GRAPH.md §3.1-3.3):
paging and its limits, `$select` (accountEnabled only when selected), simple filters, and delta
rounds that report exactly the changes, with `@removed`, `latest` and 410 after seven days."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devtools.graph_emulator import seed, users
from tests.support.emulator_fixture import new_tenant
# An emulator of this module's own: the delta-expiry tests move the clock.
from tests.support.emulator_modules import emulator  # noqa: F401 - fixture


@pytest.fixture
def tenant(emulator):
    return new_tenant(emulator, users=12, rooms=2)


def follow(session, url, headers=None):
    """All pages of a list or delta round: (pages, final page)."""
    pages = []
    while True:
        response = session.get(url, headers=headers or {})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        assert not ("@odata.nextLink" in page and "@odata.deltaLink" in page)
        url = page.get("@odata.nextLink")
        if url is None:
            return pages, page


def items(pages):
    return [item for page in pages for item in page["value"]]


def live_ids(tenant):
    return {u.id for u in tenant.tenant.users.values() if u.deleted_at is None}


# ---- GET /users ------------------------------------------------------------------------------------

def test_list_pages_by_100_by_default_and_covers_every_user_once(emulator):
    tenant = new_tenant(emulator)
    seed.seed_many_users(emulator.world, tenant.tenant, 230)
    session = tenant.session()
    pages, _ = follow(session, f"{tenant.api_base}/users?$select=id")
    assert [len(p["value"]) for p in pages] == [100, 100, 30]
    ids = [u["id"] for u in items(pages)]
    assert len(ids) == len(set(ids)) and set(ids) == live_ids(tenant)
    assert "$skiptoken=" in pages[0]["@odata.nextLink"]
    assert pages[0]["@odata.context"].endswith("$metadata#users(id)")


def test_top_accepts_1_to_999(tenant):
    session = tenant.session()
    assert len(session.get(f"{tenant.api_base}/users?$top=5").json()["value"]) == 5
    assert session.get(f"{tenant.api_base}/users?$top=999").status_code == 200
    for bad in ("1000", "0"):
        response = session.get(f"{tenant.api_base}/users?$top={bad}")
        assert response.status_code == 400
        assert response.json()["error"]["message"] == \
            f"Invalid page size specified: '{bad}'. Must be between 1 and 999 inclusive."


def test_skip_is_not_supported(tenant):
    response = tenant.session().get(f"{tenant.api_base}/users?$skip=5")
    assert response.status_code == 400
    assert "$skip" in response.json()["error"]["message"]


def test_default_properties_leave_out_account_enabled(tenant):
    user = tenant.session().get(f"{tenant.api_base}/users").json()["value"][0]
    assert set(user) == set(users.DEFAULT_SELECT)
    assert "accountEnabled" not in user and "department" not in user and "userType" not in user


def test_select_returns_exactly_the_selected_properties(tenant):
    listed = tenant.session().get(f"{tenant.api_base}/users?$select=displayName,accountEnabled,department").json()
    assert listed["@odata.context"].endswith("#users(displayName,accountEnabled,department)")
    for user in listed["value"]:
        assert set(user) == {"displayName", "accountEnabled", "department"}
    rooms = [u for u in listed["value"] if u["displayName"].startswith("Room")]
    assert rooms and all(u["accountEnabled"] is False for u in rooms)


def test_select_of_an_unknown_property_is_400(tenant):
    response = tenant.session().get(f"{tenant.api_base}/users?$select=displayName,shoeSize")
    assert response.status_code == 400
    assert "shoeSize" in response.json()["error"]["message"]


def test_filters(tenant):
    session = tenant.session()
    people = tenant.users
    users.disable_user(tenant.world, tenant.tenant, people[0].id)

    def ids(filter_text):
        response = session.get(f"{tenant.api_base}/users", params={"$filter": filter_text, "$select": "id"})
        assert response.status_code == 200, response.text
        return {u["id"] for u in response.json()["value"]}

    assert ids(f"mail eq '{people[1].mail.upper()}'") == {people[1].id}
    assert ids(f"userPrincipalName eq '{people[2].user_principal_name}'") == {people[2].id}
    disabled = {u.id for u in tenant.tenant.users.values() if not u.account_enabled}
    assert ids("accountEnabled eq false") == disabled
    assert people[0].id in disabled and len(disabled) == 3  # one person and two rooms
    assert ids("accountEnabled eq true") == live_ids(tenant) - disabled
    prefix = people[3].display_name[:4].lower()
    expected = {u.id for u in tenant.tenant.users.values() if u.display_name.lower().startswith(prefix)}
    assert ids(f"startswith(displayName,'{prefix}')") == expected
    assert ids(f"id in ('{people[4].id}', '{people[5].id}')") == {people[4].id, people[5].id}
    assert ids(f"accountEnabled eq true and id in ('{people[0].id}', '{people[5].id}')") == {people[5].id}


@pytest.mark.parametrize("clause", ["endswith(mail,'.com')", "displayName ne 'x'", "jobTitle gt 'a'"])
def test_advanced_filters_need_consistency_level(tenant, clause):
    session = tenant.session()
    response = session.get(f"{tenant.api_base}/users", params={"$filter": clause})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert clause in response.json()["error"]["message"]


def test_advanced_query_with_count(tenant):
    response = tenant.session().get(
        f"{tenant.api_base}/users", headers={"ConsistencyLevel": "eventual"},
        params={"$filter": f"endswith(mail,'@{tenant.domain}')", "$count": "true", "$select": "id"})
    assert response.status_code == 200, response.text
    assert response.json()["@odata.count"] == len(live_ids(tenant))


def test_filtered_paging_keeps_the_filter(emulator):
    tenant = new_tenant(emulator, users=7)
    for person in tenant.users[:5]:
        users.disable_user(emulator.world, tenant.tenant, person.id)
    pages, _ = follow(tenant.session(), f"{tenant.api_base}/users?$top=2&$filter=accountEnabled eq false&$select=id")
    assert {u["id"] for u in items(pages)} == {p.id for p in tenant.users[:5]}


def test_get_by_id_and_by_upn(tenant):
    session = tenant.session()
    person = tenant.users[0]
    by_id = session.get(f"{tenant.api_base}/users/{person.id}").json()
    by_upn = session.get(f"{tenant.api_base}/users/{person.user_principal_name}?$select=id,accountEnabled").json()
    assert by_id["userPrincipalName"] == person.user_principal_name
    assert by_id["@odata.context"].endswith("$metadata#users/$entity")
    assert by_upn["id"] == person.id and by_upn["accountEnabled"] is True


def test_missing_user_is_request_resource_not_found(tenant):
    response = tenant.session().get(f"{tenant.api_base}/users/nobody@{tenant.domain}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert error["message"] == (f"Resource 'nobody@{tenant.domain}' does not exist or one of its queried "
                                "reference-property objects are not present.")


def test_soft_deleted_users_disappear_from_list_and_get(tenant):
    session = tenant.session()
    gone = tenant.users[0]
    users.soft_delete_user(tenant.world, tenant.tenant, gone.id)
    assert session.get(f"{tenant.api_base}/users/{gone.id}").status_code == 404
    listed = {u["id"] for u in session.get(f"{tenant.api_base}/users?$select=id").json()["value"]}
    assert gone.id not in listed and tenant.users[1].id in listed
    users.restore_user(tenant.world, tenant.tenant, gone.id)
    assert session.get(f"{tenant.api_base}/users/{gone.id}").status_code == 200


# ---- GET /users/delta --------------------------------------------------------------------------------

DELTA_SELECT = "displayName,mail,accountEnabled"


def initial_round(tenant, select=DELTA_SELECT, page_size=5):
    pages, last = follow(tenant.session(), f"{tenant.api_base}/users/delta?$select={select}",
                         headers={"Prefer": f"odata.maxpagesize={page_size}"})
    return pages, last["@odata.deltaLink"]


def replay(tenant, delta_link, headers=None):
    pages, last = follow(tenant.session(), delta_link, headers)
    return items(pages), last["@odata.deltaLink"]


def test_initial_round_pages_through_every_user(tenant):
    pages, delta_link = initial_round(tenant)
    assert len(pages) == 3  # 14 users in pages of 5
    assert all("$skiptoken=" in p["@odata.nextLink"] for p in pages[:-1])
    assert "$deltatoken=" in delta_link
    found = items(pages)
    assert {u["id"] for u in found} == live_ids(tenant)
    assert all(set(u) == {"id", "displayName", "mail", "accountEnabled"} for u in found)


def test_prefer_maxpagesize_is_echoed(tenant):
    response = tenant.session().get(f"{tenant.api_base}/users/delta", headers={"Prefer": "odata.maxpagesize=3"})
    assert len(response.json()["value"]) == 3
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=3"


def test_replay_reports_exactly_the_changes(tenant):
    world, directory = tenant.world, tenant.tenant
    _, delta_link = initial_round(tenant)
    nothing, delta_link = replay(tenant, delta_link)
    assert nothing == []
    disabled, soft, hard, renamed, unselected = tenant.users[:5]
    users.disable_user(world, directory, disabled.id)
    users.soft_delete_user(world, directory, soft.id)
    users.hard_delete_user(world, directory, hard.id)
    users.update_user(world, directory, renamed.id, {"displayName": "Renamed Person"})
    users.update_user(world, directory, unselected.id, {"department": "Somewhere Else", "jobTitle": "Other"})
    added = seed.add_user(world, directory, alias="newcomer")
    changes, _ = replay(tenant, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert len(changes) == 5 and set(by_id) == {disabled.id, soft.id, hard.id, renamed.id, added.id}
    assert by_id[disabled.id] == {"id": disabled.id, "displayName": disabled.display_name,
                                  "mail": disabled.mail, "accountEnabled": False}
    assert by_id[soft.id] == {"id": soft.id, "@removed": {"reason": "changed"}}
    assert by_id[hard.id] == {"id": hard.id, "@removed": {"reason": "deleted"}}
    assert by_id[renamed.id]["displayName"] == "Renamed Person"
    assert by_id[added.id]["mail"] == f"newcomer@{tenant.domain}"


def test_changes_to_unselected_properties_do_not_surface(tenant):
    _, delta_link = initial_round(tenant, select="displayName,mail")
    users.disable_user(tenant.world, tenant.tenant, tenant.users[0].id)
    users.update_user(tenant.world, tenant.tenant, tenant.users[1].id, {"department": "Elsewhere"})
    changes, delta_link = replay(tenant, delta_link)
    assert changes == []
    users.update_user(tenant.world, tenant.tenant, tenant.users[1].id, {"mail": f"moved@{tenant.domain}"})
    changes, _ = replay(tenant, delta_link)
    assert changes == [{"id": tenant.users[1].id, "displayName": tenant.users[1].display_name,
                        "mail": f"moved@{tenant.domain}"}]


def test_restored_user_reappears(tenant):
    person = tenant.users[0]
    users.soft_delete_user(tenant.world, tenant.tenant, person.id)
    _, delta_link = initial_round(tenant)
    users.restore_user(tenant.world, tenant.tenant, person.id)
    changes, _ = replay(tenant, delta_link)
    assert changes == [{"id": person.id, "displayName": person.display_name, "mail": person.mail,
                        "accountEnabled": True}]


def test_return_minimal_gives_only_changed_properties(tenant):
    _, delta_link = initial_round(tenant)
    users.disable_user(tenant.world, tenant.tenant, tenant.users[0].id)
    changes, _ = replay(tenant, delta_link, headers={"Prefer": "return=minimal"})
    assert changes == [{"id": tenant.users[0].id, "accountEnabled": False}]


def test_deltatoken_latest_gives_only_a_delta_link(tenant):
    response = tenant.session().get(f"{tenant.api_base}/users/delta?$deltatoken=latest&$select=displayName")
    body = response.json()
    assert body["value"] == [] and "@odata.nextLink" not in body
    users.update_user(tenant.world, tenant.tenant, tenant.users[0].id, {"displayName": "After Latest"})
    changes, _ = replay(tenant, body["@odata.deltaLink"])
    assert changes == [{"id": tenant.users[0].id, "displayName": "After Latest"}]


def test_delta_filter_by_ids(tenant):
    wanted = tenant.users[:2]
    filter_text = " or ".join(f"id eq '{u.id}'" for u in wanted)
    response = tenant.session().get(f"{tenant.api_base}/users/delta", params={"$filter": filter_text})
    assert {u["id"] for u in response.json()["value"]} == {u.id for u in wanted}
    users.update_user(tenant.world, tenant.tenant, tenant.users[3].id, {"displayName": "Not Tracked"})
    users.update_user(tenant.world, tenant.tenant, wanted[0].id, {"displayName": "Tracked"})
    changes, _ = replay(tenant, response.json()["@odata.deltaLink"])
    assert [c["id"] for c in changes] == [wanted[0].id]


@pytest.mark.parametrize("query", ["$top=5", "$orderby=displayName", "$filter=startswith(displayName,'a')"])
def test_unsupported_delta_options_are_400(tenant, query):
    assert tenant.session().get(f"{tenant.api_base}/users/delta?{query}").status_code == 400


def test_skiptoken_with_select_is_400(tenant):
    session = tenant.session()
    first = session.get(f"{tenant.api_base}/users/delta", headers={"Prefer": "odata.maxpagesize=2"}).json()
    response = session.get(first["@odata.nextLink"] + "&$select=displayName")
    assert response.status_code == 400


def test_delta_token_expires_after_seven_days(tenant, emulator):
    _, delta_link = initial_round(tenant)
    emulator.world.clock.advance(timedelta(days=7, seconds=1).total_seconds())
    try:
        response = tenant.session().get(delta_link)  # a fresh token: the old one expired too
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "syncStateNotFound"
        restart = response.headers["Location"]
        assert restart.endswith("$deltatoken=")
        pages, last = follow(tenant.session(), restart)
        assert {u["id"] for u in items(pages)} == live_ids(tenant)
        assert set(items(pages)[0]) == {"id", "displayName", "mail", "accountEnabled"}
        assert "@odata.deltaLink" in last
    finally:
        emulator.world.clock.set(datetime.now(timezone.utc))


def test_a_token_younger_than_seven_days_still_works(tenant, emulator):
    _, delta_link = initial_round(tenant)
    emulator.world.clock.advance(timedelta(days=6, hours=23).total_seconds())
    try:
        response = tenant.session().get(delta_link)
        assert response.status_code == 200 and response.json()["value"] == []
    finally:
        emulator.world.clock.set(datetime.now(timezone.utc))


def test_tokens_can_be_expired_on_demand(tenant):
    session = tenant.session()
    first = session.get(f"{tenant.api_base}/users/delta", headers={"Prefer": "odata.maxpagesize=2"}).json()
    _, delta_link = initial_round(tenant)
    users.expire_delta_tokens(tenant.world, tenant.tenant)
    assert session.get(delta_link).status_code == 410
    assert session.get(first["@odata.nextLink"]).status_code == 410
    _, fresh = initial_round(tenant)
    assert session.get(fresh).status_code == 200


def test_a_token_from_another_tenant_is_refused(tenant, emulator):
    _, delta_link = initial_round(tenant)
    other = new_tenant(emulator, users=1)
    assert other.session().get(delta_link).status_code == 400


def test_changes_during_an_initial_round_come_in_the_next_round(tenant):
    session = tenant.session()
    first = session.get(f"{tenant.api_base}/users/delta?$select=displayName",
                        headers={"Prefer": "odata.maxpagesize=4"}).json()
    users.update_user(tenant.world, tenant.tenant, tenant.users[0].id, {"displayName": "Mid Round"})
    _, last = follow(session, first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=4"})
    changes, _ = replay(tenant, last["@odata.deltaLink"])
    assert changes == [{"id": tenant.users[0].id, "displayName": "Mid Round"}]


# ---- directory mutations publish changes ---------------------------------------------------------------

def test_mutations_publish_user_changes(tenant):
    seen = []
    tenant.world.bus.subscribe(lambda change: seen.append(change) if change.tenant_id == tenant.tenant_id else None)
    person = tenant.users[0]
    added = seed.add_user(tenant.world, tenant.tenant)
    users.update_user(tenant.world, tenant.tenant, person.id, {"displayName": "X"})
    users.update_user(tenant.world, tenant.tenant, person.id, {"displayName": "X"})  # no change, no event
    users.soft_delete_user(tenant.world, tenant.tenant, person.id)
    users.hard_delete_user(tenant.world, tenant.tenant, person.id)
    assert [(c.change_type, c.item_id) for c in seen] == [
        ("updated", added.id), ("updated", person.id), ("updated", person.id), ("deleted", person.id)]
    assert all(c.kind == "users" and c.resource == f"Users/{c.item_id}" and
               c.odata_type == "#Microsoft.Graph.User" for c in seen)


def test_duplicate_upn_is_refused(tenant):
    with pytest.raises(users.DirectoryError):
        users.update_user(tenant.world, tenant.tenant, tenant.users[0].id,
                          {"userPrincipalName": tenant.users[1].user_principal_name.upper()})


def test_page_size_from_the_first_request_carries_over_to_next_links(tenant):
    session = tenant.session()
    first = session.get(f"{tenant.api_base}/users/delta", headers={"Prefer": "odata.maxpagesize=4"}).json()
    pages, _ = follow(session, first["@odata.nextLink"])
    assert [len(p["value"]) for p in [first, *pages]] == [4, 4, 4, 2]


def test_seeded_people_get_unique_addresses(emulator):
    tenant = new_tenant(emulator)
    made = seed.add_users(emulator.world, tenant.tenant, 300, seed=7)
    addresses = [u.user_principal_name for u in made]
    assert len(set(addresses)) == 300 and all(a == u.mail for a, u in zip(addresses, made))
    assert all(a.endswith(f"@{tenant.domain}") for a in addresses)
