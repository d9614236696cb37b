"""The pure user-sync planner: directory round + stored people -> actions, counts, guard, index."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from sync.model import (
    REASON_DISABLED, REASON_EMAIL_IN_USE, REASON_NOT_IN_DIRECTORY, REASON_OUT_OF_DOMAIN, REASON_REMOVED,
)
from sync.user_delta import (
    CREATE, DEACTIVATE, EVENT_DEACTIVATED, EVENT_REACTIVATED, MISSING, REACTIVATE, UPDATE, MalformedEntry,
    apply_plan, check_guard, email_of, index_changes, merge_entries, parse_entry, plan_users, refuse_emails,
    upn_domains,
)

import pytest

INTEGRATION = "6f1c2d3e-0000-4000-8000-000000000001"
DOMAINS = ("contoso.com", "Fabrikam.COM")
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=1)


def person(user_id: str, alias: str, domain: str = "contoso.com", enabled: bool = True, **extra) -> dict:
    address = f"{alias}@{domain}"
    item = {"id": user_id, "userPrincipalName": address, "mail": address, "displayName": alias.title(),
            "givenName": alias.title(), "surname": "Doe", "department": "Sales", "jobTitle": "Rep",
            "officeLocation": "HQ", "userType": "Member", "accountEnabled": enabled}
    item.update(extra)
    return item


def removed(user_id: str, reason: str = "changed") -> dict:
    return {"id": user_id, "@removed": {"reason": reason}}


def plan(items, local=None, full=False, now=T1, domains=DOMAINS, unproven=()):
    entries = merge_entries(parse_entry(item) for item in items)
    return plan_users(INTEGRATION, entries, local or {}, domains=domains, full_read=full, now=now, unproven=unproven)


def first_sync(items):
    result = plan(items, full=True, now=T0)
    return apply_plan({}, result)


# ---- reading entries ----------------------------------------------------------------------------

def test_parse_keeps_selected_properties_and_marks_absent_ones_missing():
    entry = parse_entry({"id": "a", "displayName": "  Ann  ", "accountEnabled": False, "mail": None})
    assert (entry.id, entry.display_name, entry.account_enabled, entry.mail) == ("a", "Ann", False, None)
    assert entry.user_principal_name is MISSING and entry.department is MISSING
    assert parse_entry(removed("b", "deleted")).removed


@pytest.mark.parametrize("item", [{}, {"id": ""}, {"id": 7}, {"displayName": "x"}, "not an object"])
def test_entries_without_an_id_are_refused(item):
    with pytest.raises(MalformedEntry):
        parse_entry(item)


def test_later_entries_win_and_removal_ends_a_person_until_they_come_back():
    entries = merge_entries(parse_entry(i) for i in [
        person("a", "ann"), {"id": "a", "department": "Legal"}, person("b", "bob"), removed("b"),
        removed("c"), person("c", "cy"),
    ])
    assert list(entries) == ["a", "b", "c"]
    assert entries["a"].department == "Legal" and entries["a"].display_name == "Ann"
    assert entries["b"].removed
    assert not entries["c"].removed and entries["c"].display_name == "Cy"


def test_email_is_the_mail_in_a_proven_domain_else_the_upn_in_one_else_none():
    proven = frozenset({"contoso.com"})
    assert email_of("Ann.Lee@Contoso.com", "x@contoso.onmicrosoft.com", proven) == "ann.lee@contoso.com"
    assert email_of(None, "Ann@Contoso.com", proven) == "ann@contoso.com"
    assert email_of("ceo@fabrikam.com", "Ann@Contoso.com", proven) == "ann@contoso.com"
    assert email_of("ceo@fabrikam.com", "ann@other.org", proven) is None
    assert email_of(None, None, proven) is None


def test_upn_domains_are_read_from_the_people_of_a_round():
    entries = merge_entries(parse_entry(i) for i in [
        person("a", "ann", "Contoso.com", mail="x@claimed.org"), person("b", "bob", "fabrikam.com"), removed("c"),
        {"id": "d", "department": "Legal"}])
    assert upn_domains(entries.values()) == {"contoso.com", "fabrikam.com"}


# ---- planning ------------------------------------------------------------------------------------

def test_first_sync_creates_people_of_the_domains_and_skips_the_rest():
    result = plan([person("a", "ann"), person("b", "bob", "FABRIKAM.com"), person("c", "cy", "other.org"),
                   person("d", "dee", enabled=False)], full=True, now=T0)
    kinds = {a.user.id: a.kind for a in result.actions}
    assert kinds == {"a": CREATE, "b": CREATE, "d": CREATE}
    users = {a.user.id: a.user for a in result.actions}
    assert users["a"].active and users["b"].active and users["b"].email == "bob@fabrikam.com"
    assert not users["d"].active and users["d"].deactivation_reason == REASON_DISABLED
    assert [a.event for a in result.actions] == [None, None, None]
    assert result.counts.as_dict() == {"created": 3, "updated": 0, "deactivated": 0, "reactivated": 0,
                                       "unchanged": 0, "skipped_out_of_domain": 1, "skipped_unproven_domain": 0,
                                       "refused_email_in_use": 0, "malformed": 0}
    assert result.active_change == 2


def test_a_mail_in_the_domain_never_makes_someone_of_another_domain_a_member():
    """`mail` is free text an admin of any tenant can set: only the UPN decides."""
    result = plan([person("a", "ann", "contoso.onmicrosoft.com", mail="ann@contoso.com")], now=T0)
    assert result.actions == [] and result.counts.skipped_out_of_domain == 1


def test_a_mail_outside_the_domains_never_becomes_the_identity():
    result = plan([person("a", "ann", mail="boss@fabrikam.com")], domains=("contoso.com",), now=T0)
    (action,) = result.actions
    assert action.user.active and action.user.email == "ann@contoso.com"


def test_people_of_an_unproven_domain_are_not_activated():
    result = plan([person("a", "ann"), person("b", "bob", "claimed.org")], domains=("contoso.com",),
                  unproven=("claimed.org",), full=True, now=T0)
    assert [a.user.id for a in result.actions] == ["a"]
    assert result.counts.skipped_unproven_domain == 1 and result.counts.skipped_out_of_domain == 0


def test_a_domain_no_longer_proven_deactivates_its_people_and_drops_their_address():
    local = first_sync([person("a", "ann")])
    result = plan([person("a", "ann")], local, domains=(), unproven=("contoso.com",), full=True)
    (action,) = result.actions
    assert (action.kind, action.user.deactivation_reason, action.user.email) == (DEACTIVATE, REASON_OUT_OF_DOMAIN, None)
    assert index_changes(result.actions).released == {"ann@contoso.com"}


def test_an_address_held_elsewhere_is_refused_never_shared():
    local = first_sync([person("a", "ann"), person("b", "bob", enabled=False)])
    result = plan([person("a", "ann", mail="taken@contoso.com"), person("b", "bob", mail="taken2@contoso.com"),
                   person("c", "cy", mail="taken3@contoso.com"), person("d", "dee")], local)
    refused = refuse_emails(result, frozenset({"taken@contoso.com", "taken2@contoso.com", "taken3@contoso.com"}), T1)
    by_id = {a.user.id: a for a in refused.actions}
    assert by_id["a"].kind == DEACTIVATE and by_id["a"].event == EVENT_DEACTIVATED  # lost their access
    assert by_id["b"].kind == UPDATE and by_id["b"].event is None  # was inactive, stays so
    assert by_id["c"].kind == CREATE and by_id["d"].kind == CREATE and by_id["d"].user.active
    for user_id in "abc":
        user = by_id[user_id].user
        assert (user.email, user.active, user.deactivation_reason) == (None, False, REASON_EMAIL_IN_USE)
    assert refused.counts.refused_email_in_use == 3 and refused.counts.reactivated == 0
    assert refused.counts.deactivated == 1 and refused.counts.created == 2
    changes = index_changes(refused.actions)
    assert changes.owners == {"dee@contoso.com": "d"} and changes.released == {"ann@contoso.com", "bob@contoso.com"}


def test_subdomains_are_not_the_domain():
    result = plan([person("a", "ann", "eu.contoso.com")], now=T0)
    assert result.actions == [] and result.counts.skipped_out_of_domain == 1


def test_changes_to_known_people():
    local = first_sync([person("a", "ann"), person("b", "bob"), person("c", "cy"), person("d", "dee"),
                        person("e", "eve")])
    result = plan([person("a", "ann", enabled=False), removed("b", "deleted"), person("c", "cyrus"),
                   person("e", "eve"), person("f", "fay")], local)
    by_id = {a.user.id: a for a in result.actions}
    assert {i: a.kind for i, a in by_id.items()} == {"a": DEACTIVATE, "b": DEACTIVATE, "c": UPDATE, "f": CREATE}
    assert by_id["a"].user.deactivation_reason == REASON_DISABLED and not by_id["a"].user.account_enabled
    assert by_id["b"].user.deactivation_reason == REASON_REMOVED and by_id["b"].user.deactivated_at == T1
    assert by_id["c"].user.email == "cyrus@contoso.com" and by_id["c"].user.created_at == T0
    assert [(a.user.id, a.event) for a in result.actions if a.event] == [("a", EVENT_DEACTIVATED),
                                                                       ("b", EVENT_DEACTIVATED)]
    assert result.counts.unchanged == 1 and result.active_change == -1


def test_reenabled_and_restored_people_are_reactivated():
    local = first_sync([person("a", "ann"), person("b", "bob")])
    local = apply_plan(local, plan([person("a", "ann", enabled=False), removed("b")], local))
    result = plan([person("a", "ann"), person("b", "bob")], local, now=T1 + timedelta(hours=1))
    assert [(a.kind, a.event) for a in result.actions] == [(REACTIVATE, EVENT_REACTIVATED)] * 2
    assert all(a.user.active and a.user.deactivated_at is None and a.user.deactivation_reason is None
               for a in result.actions)


def test_moving_out_of_the_domains_deactivates():
    local = first_sync([person("a", "ann")])
    result = plan([person("a", "ann", "other.org")], local)
    (action,) = result.actions
    assert (action.kind, action.user.deactivation_reason, action.user.email) == (
        DEACTIVATE, REASON_OUT_OF_DOMAIN, None)


def test_a_full_read_deactivates_active_people_it_does_not_list():
    local = first_sync([person("a", "ann"), person("b", "bob"), person("c", "cy", enabled=False)])
    result = plan([person("a", "ann")], local, full=True)
    assert [(a.user.id, a.kind, a.user.deactivation_reason) for a in result.actions] == [
        ("b", DEACTIVATE, REASON_NOT_IN_DIRECTORY)]
    assert result.counts.unchanged == 1


def test_removals_of_unknown_people_and_inactive_ones_change_nothing():
    local = first_sync([person("c", "cy", enabled=False)])
    result = plan([removed("x"), removed("c")], local)
    assert result.actions == [] and result.counts.unchanged == 2


def test_identical_data_is_unchanged_and_partial_updates_keep_other_properties():
    local = first_sync([person("a", "ann")])
    assert plan([person("a", "ann")], local).actions == []
    (action,) = plan([{"id": "a", "jobTitle": "Manager"}], local).actions
    assert action.kind == UPDATE and action.user.job_title == "Manager" and action.user.email == "ann@contoso.com"


# ---- email index -------------------------------------------------------------------------------

def test_an_email_change_moves_the_index_row():
    local = first_sync([person("a", "ann")])
    changes = index_changes(plan([person("a", "anna")], local).actions)
    assert changes.owners == {"anna@contoso.com": "a"} and changes.released == {"ann@contoso.com"}


def test_swapped_emails_are_reassigned_without_deleting_either_row():
    local = first_sync([person("a", "ann"), person("b", "bob")])
    swapped = [person("a", "ann", mail="bob@contoso.com"), person("b", "bob", mail="ann@contoso.com")]
    changes = index_changes(plan(swapped, local).actions)
    assert changes.owners == {"bob@contoso.com": "a", "ann@contoso.com": "b"} and changes.released == set()


def test_unchanged_emails_need_no_index_writes():
    local = first_sync([person("a", "ann")])
    changes = index_changes(plan([person("a", "ann", enabled=False)], local).actions)
    assert changes.owners == {} and changes.released == set()


# ---- the guard ---------------------------------------------------------------------------------

@pytest.mark.parametrize("deactivations, active, share, tripped", [
    (2, 2, 0.2, False),     # below the absolute floor: a tiny directory losing two people
    (3, 5, 0.2, True),      # 60%
    (3, 15, 0.2, False),    # exactly 20%: allowed
    (4, 15, 0.2, True),
    (20, 100, 0.2, False),
    (21, 100, 0.2, True),
    (21, 100, 0.5, False),
    (0, 0, 0.2, False),
])
def test_guard(deactivations, active, share, tripped):
    verdict = check_guard(deactivations, active, share)
    assert verdict.tripped is tripped
    assert verdict.tripped == (deactivations > verdict.limit)
    if tripped:
        assert f"{deactivations} of {active}" in verdict.explain()


# ---- property: whatever the directory does, a sync converges to it --------------------------------

ALL_DOMAINS = ("contoso.com", "CONTOSO.com", "fabrikam.com", "other.org")


@dataclass
class DirectoryPerson:
    alias: str
    domain: str
    enabled: bool
    deleted: bool = False


operation = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(ALL_DOMAINS), st.booleans()),
    st.tuples(st.sampled_from(["disable", "enable", "delete", "restore", "hard-delete", "rename"]),
              st.integers(0, 30)),
    st.tuples(st.just("move"), st.integers(0, 30), st.sampled_from(ALL_DOMAINS)),
    st.tuples(st.just("sync"), st.sampled_from(["delta", "full"])),
    st.tuples(st.just("expire")),  # the delta link expires: pending changes are never reported
)


def directory_item(user_id: str, who: DirectoryPerson | None) -> dict:
    if who is None:
        return removed(user_id, "deleted")
    if who.deleted:
        return removed(user_id, "changed")
    return person(user_id, who.alias, who.domain, enabled=who.enabled)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60))
def test_after_any_changes_a_sync_leaves_exactly_the_enabled_in_domain_people_active(operations):
    directory: dict[str, DirectoryPerson | None] = {}
    touched: list[str] = []  # ids changed since the last sync, in order, with repeats
    local: dict = {}
    expired = False
    now = T0
    counter = 0

    def sync(kind: str) -> None:
        nonlocal local, now, expired
        now += timedelta(minutes=5)
        if kind == "full" or not local or expired:
            items = [directory_item(i, p) for i, p in directory.items() if p is not None and not p.deleted]
            mentioned = dict(local)
            full = True
        else:
            # Graph reports each changed person with their current state, possibly several times.
            items = [directory_item(i, directory.get(i)) for i in touched]
            mentioned = {i: local[i] for i in touched if i in local}
            full = False
        entries = merge_entries(parse_entry(item) for item in items)
        result = plan_users(INTEGRATION, entries, mentioned, domains=("contoso.com", "Fabrikam.com"),
                            full_read=full, now=now)
        assert len({a.user.id for a in result.actions}) == len(result.actions)
        local = apply_plan(local, result)
        touched.clear()
        expired = False

    for op in operations:
        existing = [i for i, p in directory.items() if p is not None]
        if op[0] == "add":
            counter += 1
            user_id = f"id-{counter}"
            directory[user_id] = DirectoryPerson(f"p{counter}", op[1], op[2])
            touched.append(user_id)
        elif op[0] == "sync":
            sync(op[1])
        elif op[0] == "expire":
            touched.clear()
            expired = True
        elif existing:
            user_id = existing[op[1] % len(existing)]
            who = directory[user_id]
            if op[0] == "disable" and not who.deleted:
                who.enabled = False
            elif op[0] == "enable" and not who.deleted:
                who.enabled = True
            elif op[0] == "delete":
                who.deleted = True
            elif op[0] == "restore":
                who.deleted = False
            elif op[0] == "hard-delete":
                directory[user_id] = None
            elif op[0] == "rename" and not who.deleted:
                who.alias += "x"
            elif op[0] == "move" and not who.deleted:
                who.domain = op[2]
            touched.append(user_id)
    sync("delta")

    expected = {i: f"{p.alias}@{p.domain}".lower() for i, p in directory.items()
                if p is not None and not p.deleted and p.enabled and p.domain.lower() in ("contoso.com", "fabrikam.com")}
    active = {i: u.email for i, u in local.items() if u.active}
    assert active == expected
    for user in local.values():
        assert user.active == (user.deactivated_at is None) == (user.deactivation_reason is None)


def test_replaying_an_applied_round_changes_nothing():
    items = [person("a", "ann"), person("b", "bob", enabled=False), removed("c")]
    local = apply_plan({}, plan(items, full=True, now=T0))
    again = plan(items, local)
    assert again.actions == [] and again.counts.unchanged == 3
    assert replace(again.counts, unchanged=0).as_dict() == {k: 0 for k in again.counts.as_dict()}
