"""The email index on Azurite: however renames are spread over runs (a person taking an address
in one run, its previous holder's rename arriving in a later one), every stored address keeps
exactly one index row, naming someone who holds it."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from sync.store import StorageLocation, Store, table_service
from sync.store.users_repo import EMAIL, UsersRepo
from sync.store.keys import decode_id, prefix_range, split
from sync.user_delta import index_changes, merge_entries, parse_entry, plan_users

DOMAIN = "contoso.com"
PEOPLE = ("a", "b", "c")
ADDRESSES = tuple(f"x{n}@{DOMAIN}" for n in range(4))
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def users(storage_connection_string) -> UsersRepo:
    return UsersRepo(Store(table_service(StorageLocation(connection_string=storage_connection_string))))


def entry(user_id: str, address: str):
    return parse_entry({"id": user_id, "userPrincipalName": address, "mail": address, "accountEnabled": True,
                        "displayName": user_id})


def sync(users: UsersRepo, integration_id: str, directory: dict[str, str], delivered: list[str], now: datetime,
         full: bool = False) -> None:
    entries = merge_entries(entry(i, directory[i]) for i in delivered)
    local = {u.id: u for u in users.all(integration_id)} if full else users.get_many(integration_id, entries)
    plan = plan_users(integration_id, entries, local, domains=(DOMAIN,), full_read=full, now=now)
    users.apply(integration_id, plan.actions, index_changes(plan.actions), base=users.summary(integration_id),
                now=now)


def index(users: UsersRepo, integration_id: str) -> dict[str, str]:
    low, high = prefix_range(EMAIL)
    rows = users.table.query("RowKey ge @low and RowKey lt @high", {"low": low, "high": high}, partition=integration_id)
    return {decode_id(split(row["RowKey"])[1]): row["UserId"] for row in rows}


def check(users: UsersRepo, integration_id: str) -> None:
    stored = {u.id: u.email for u in users.all(integration_id)}
    rows = index(users, integration_id)
    for address, owner in rows.items():
        assert stored.get(owner) == address, f"index row {address} names {owner}, who holds {stored.get(owner)}"
    for person, address in stored.items():
        assert address in rows, f"{person} holds {address}, which has no index row"


# A step: someone takes a free address (or another person's, who moves on to a free one in the
# same instant), and which of the changed people the next run hears about.
step = st.tuples(st.sampled_from(PEOPLE), st.sampled_from(ADDRESSES), st.booleans(), st.sets(st.sampled_from(PEOPLE)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(step, min_size=1, max_size=6))
# Ann and Bob swap; only Bob's change arrives; Ann moves back to her first address, so her own
# change never shows; when Bob moves on, the address must pass back to Ann, not vanish.
@example(steps=[("a", ADDRESSES[1], True, {"b"}), ("a", ADDRESSES[0], False, set())])
def test_renames_over_runs_keep_one_owner_per_address(users, steps):
    integration_id = str(uuid.uuid4())
    directory = dict(zip(PEOPLE, ADDRESSES))
    now = T0
    sync(users, integration_id, directory, list(PEOPLE), now, full=True)
    check(users, integration_id)
    waiting: list[str] = []
    for person, address, swap, heard in steps:
        holder = next((p for p, a in directory.items() if a == address), None)
        if holder == person:
            continue
        if holder is not None:
            if swap:
                directory[holder] = directory[person]
            else:
                directory[holder] = next(a for a in ADDRESSES if a not in directory.values())
            waiting.append(holder)
        directory[person] = address
        waiting.append(person)
        delivered = [p for p in dict.fromkeys(waiting) if p in heard]
        now += timedelta(minutes=5)
        sync(users, integration_id, directory, delivered, now)
        waiting = [p for p in waiting if p not in delivered]
        check(users, integration_id)
    now += timedelta(minutes=5)
    sync(users, integration_id, directory, list(dict.fromkeys(waiting)), now)
    check(users, integration_id)
    assert {u.id: u.email for u in users.all(integration_id)} == directory
    users.purge(integration_id)


def test_a_released_address_someone_else_took_in_an_earlier_run_keeps_its_row(users):
    """Ann takes Bob's address in one run; Bob's rename reaches the next run."""
    integration_id = str(uuid.uuid4())
    directory = {"ann": f"ann@{DOMAIN}", "bob": f"bob@{DOMAIN}"}
    sync(users, integration_id, directory, ["ann", "bob"], T0, full=True)
    directory = {"ann": f"bob@{DOMAIN}", "bob": f"robert@{DOMAIN}"}
    sync(users, integration_id, directory, ["ann"], T0 + timedelta(minutes=5))
    sync(users, integration_id, directory, ["bob"], T0 + timedelta(minutes=10))
    assert index(users, integration_id) == {f"bob@{DOMAIN}": "ann", f"robert@{DOMAIN}": "bob"}
    assert users.get_by_email(integration_id, f"bob@{DOMAIN}").id == "ann"
    users.purge(integration_id)
