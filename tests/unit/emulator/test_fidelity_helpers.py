"""Pure pieces behind the emulator's second fidelity round: Retry-After formatting, If-Match
matching, notification resource forms, and `$search` / `$orderby` for users."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.event_ids import etag, if_match_allows, new_change_key
from devtools.graph_emulator.payloads import RESOURCE_FORMS, choose_resource_form, event_resource
from devtools.graph_emulator.state import User, World
from devtools.graph_emulator.throttling import Limits, Throttler, format_retry_after
from devtools.graph_emulator.users_search import compile_order, compile_search, words


# ---- Retry-After ----------------------------------------------------------------------------------

def test_retry_after_is_written_like_the_throttling_pages_sample():
    """https://learn.microsoft.com/en-us/graph/throttling prints `Retry-After: 2.128`; whole
    values stay whole."""
    assert format_retry_after(2.128) == "2.128"
    assert format_retry_after(10) == "10"
    assert format_retry_after(0.5) == "0.5"
    assert format_retry_after(2.1281) == "2.129"  # rounded up: waiting that long is enough
    assert format_retry_after(-3) == "0"


@given(st.floats(min_value=0, max_value=100_000, allow_nan=False))
def test_retry_after_never_asks_for_less_than_the_real_wait(seconds):
    written = float(format_retry_after(seconds))
    assert written >= seconds - 1e-9
    assert written - seconds < 0.001 + 1e-9
    assert len(format_retry_after(seconds).partition(".")[2]) <= 3


def test_a_window_freeing_between_whole_seconds_gives_a_fractional_retry_after():
    """https://learn.microsoft.com/en-us/graph/throttling: wait the Retry-After seconds; the
    Outlook budget (throttling-limits) frees up when its oldest request leaves the window."""
    throttler, limits = Throttler(World()), Limits(mailbox_requests=2, mailbox_window_seconds=600)
    mailbox = ("tenant", "app", "mailbox")
    for moment in (0.25, 1.0):
        assert throttler.admit_mailbox(mailbox, "room@x", limits, now=moment) is None
        throttler.release_mailbox(mailbox)
    refused = throttler.admit_mailbox(mailbox, "room@x", limits, now=3.0)
    assert refused.status == 429 and refused.headers["Retry-After"] == "597.25"


# ---- If-Match ----------------------------------------------------------------------------------------

def test_if_match_accepts_the_current_change_key_in_every_spelling_and_nothing_older():
    """https://learn.microsoft.com/en-us/graph/api/resources/event: `@odata.etag` is
    `W/"<changeKey>"`; a write carrying an older one is refused (412, ErrorIrresolvableConflict)."""
    current, older = new_change_key(), new_change_key()
    for header in (etag(current), f'"{current}"', current, "*", f'{etag(older)}, {etag(current)}', None, ""):
        assert if_match_allows(header, current), header
    for header in (etag(older), f'"{older}"', 'W/""', etag(current.swapcase())):  # keys are case-sensitive
        assert not if_match_allows(header, current), header


# ---- notification resource forms ----------------------------------------------------------------------

def test_each_resource_form_is_one_the_docs_print():
    """https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks (sample
    `users/{id}@{tenant}/messages/{id}` with `@odata.id` `Users/{id}@{tenant}/Messages/{id}`) and
    https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data
    (`Users('{id}')/messages('{id}')`)."""
    assert event_resource("path", "t", "u", "e/1=") == ("Users/u/Events/e/1=", "Users/u/Events/e/1=")
    assert event_resource("tenant", "t", "u", "e") == ("users/u@t/events/e", "Users/u@t/Events/e")
    assert event_resource("key", "t", "u", "e") == ("Users('u')/Events('e')", "Users('u')/Events('e')")


def test_random_forms_repeat_with_the_seed_and_cover_every_form():
    draw_a, draw_b, other = random.Random(7), random.Random(7), random.Random(8)
    run_a = [choose_resource_form("random", draw_a) for _ in range(30)]
    run_b = [choose_resource_form("random", draw_b) for _ in range(30)]
    assert run_a == run_b
    assert [choose_resource_form("random", other) for _ in range(30)] != run_a
    assert set(run_a) == set(RESOURCE_FORMS)
    assert choose_resource_form("key", random.Random(7)) == "key"


# ---- users $search and $orderby -------------------------------------------------------------------------

def person(display_name: str, mail: str | None = None, user_id: str | None = None) -> User:
    user_id = user_id or display_name.lower().replace(" ", "-")
    return User(id=user_id, user_principal_name=f"{user_id}@x.example", display_name=display_name,
                mail=mail if mail is not None else f"{user_id}@x.example")


def test_words_split_on_symbols_spaces_and_camel_case():
    assert words("Conf Room 3-West") == ["conf", "room", "3", "west"]
    assert words("BoardRoomNorth") == ["board", "room", "north"]
    assert words("ada.lovelace@x.example") == ["ada", "lovelace", "x", "example"]


def test_search_matches_word_prefixes_and_combines_with_and_or():
    """https://learn.microsoft.com/en-us/graph/aad-advanced-queries: `$search` uses tokenized
    prefix matching on quoted `"property:term"` clauses and needs `ConsistencyLevel: eventual`."""
    ada, grace, room = person("Ada Lovelace"), person("Grace Hopper"), person("Board Room North")
    everyone = [ada, grace, room]

    def found(text):
        test = compile_search(text, eventual=True)
        return [u.display_name for u in everyone if test(u)]

    assert found('"displayName:lov"') == ["Ada Lovelace"]
    assert found('"displayName:room no"') == ["Board Room North"]
    assert found('"displayName:ada" OR "displayName:hop"') == ["Ada Lovelace", "Grace Hopper"]
    assert found('"displayName:ada" AND "mail:grace"') == []
    assert found('"displayName:velace"') == []  # a prefix of a word, not any substring
    with pytest.raises(GraphError) as refused:
        compile_search('"displayName:ada"', eventual=False)
    assert refused.value.code == "Request_UnsupportedQuery"
    assert "ConsistencyLevel: eventual" in refused.value.message
    with pytest.raises(GraphError):
        compile_search("displayName:ada", eventual=True)  # the clause must be quoted


@given(st.lists(st.sampled_from(["Ada", "ada", "Bo", "Cy", "", "Zed"]), min_size=0, max_size=12),
       st.booleans())
def test_orderby_sorts_case_insensitively_and_keeps_empty_values_last(names, descending):
    users = [person(name or f"nameless {n}", user_id=f"u{n:02d}") for n, name in enumerate(names)]
    for user, name in zip(users, names):
        user.display_name = name
    sort = compile_order(f"displayName {'desc' if descending else 'asc'}", advanced=False, narrowed=False)
    ordered = sort(users)
    assert sorted(u.id for u in ordered) == sorted(u.id for u in users)
    named = [u.display_name.lower() for u in ordered if u.display_name]
    assert named == sorted(named, reverse=descending)
    seen_empty = False
    for user in ordered:
        seen_empty = seen_empty or not user.display_name
        assert not (seen_empty and user.display_name)


def test_sorting_a_narrowed_list_needs_the_advanced_query():
    """https://learn.microsoft.com/en-us/graph/aad-advanced-queries: `$filter` or `$search` with
    `$orderby` needs ConsistencyLevel: eventual and `$count=true`, otherwise 400
    Request_UnsupportedQuery "Sorting not supported for current query."."""
    with pytest.raises(GraphError) as refused:
        compile_order("displayName", advanced=False, narrowed=True)
    assert (refused.value.status, refused.value.code) == (400, "Request_UnsupportedQuery")
    assert refused.value.message == "Sorting not supported for current query."
    assert compile_order("displayName", advanced=True, narrowed=True) is not None
    with pytest.raises(GraphError):
        compile_order("mail", advanced=False, narrowed=False)  # only with the advanced query
    assert compile_order("mail desc, displayName", advanced=True, narrowed=False) is not None
    assert compile_order(None, advanced=False, narrowed=True) is None
