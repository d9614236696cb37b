"""Filter parameters become escaped OData literals, so values can never rewrite a filter."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.store.filters import literal, substitute


@given(st.text(max_size=50))
def test_a_string_literal_always_closes_where_it_should(value):
    text = literal(value)
    assert text.startswith("'") and text.endswith("'")
    assert text[1:-1].replace("''", "").count("'") == 0
    assert text[1:-1].replace("''", "'") == value


def test_literals_by_type():
    assert literal(True) == "true" and literal(False) == "false"
    assert literal(7) == "7" and literal(2**31) == f"{2**31}L"
    assert literal(1.5) == "1.5"
    moment = datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert literal(moment) == "datetime'2024-03-01T08:00:00.000000Z'"
    ident = uuid.UUID(int=5)
    assert literal(ident) == f"guid'{ident}'"
    assert literal(b"\x01\xff") == "X'01ff'"


@pytest.mark.parametrize("value, problem", [
    (datetime(2024, 1, 1), "naive"),
    (float("nan"), "finite"),
    (2**70, "64 bits"),
    (object(), "unsupported"),
])
def test_unusable_values_are_refused_naming_the_parameter(value, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        literal(value, "start")
    assert "'start'" in str(caught.value)


def test_parameters_are_replaced_outside_quoted_text_only():
    result = substitute("(Name eq @name) and Note eq 'mail @name here' and Count gt @n",
                        {"name": "O'Brien @n", "n": 3})
    assert result == "(Name eq 'O''Brien @n') and Note eq 'mail @name here' and Count gt 3"


def test_missing_and_unused_parameters_are_named():
    with pytest.raises(ValueError, match="'who'"):
        substitute("Name eq @who", {})
    with pytest.raises(ValueError, match="extra"):
        substitute("Name eq @who", {"who": "a", "extra": 1})
