from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given, strategies as st

from graph.retry import Backoff, RetryBudget, next_wait, parse_retry_after

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("header, seconds", [("10", 10.0), (" 3 ", 3.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0)])
def test_delta_seconds(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


def test_http_date_in_the_future_is_the_distance_from_now():
    header = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(header, NOW) == pytest.approx(42.0)


def test_http_date_in_the_past_means_retry_now():
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(header, NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "Thu, 99 Foo 2024"])
def test_unreadable_values_are_ignored(header):
    assert parse_retry_after(header, NOW) is None


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=1))
def test_backoff_stays_between_half_and_full_step(attempt, draw):
    backoff = Backoff(base=0.5, cap=16.0, rng=lambda: draw)
    step = min(16.0, 0.5 * 2 ** (attempt - 1))
    assert step / 2 <= backoff.delay(attempt) <= step


def test_backoff_grows_then_caps():
    backoff = Backoff(base=1.0, cap=4.0, rng=lambda: 1.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_server_retry_after_wins_over_backoff():
    backoff = Backoff(rng=lambda: 1.0)
    assert next_wait(5, 2.0, backoff) == 2.0
    assert next_wait(1, None, backoff) == backoff.delay(1)


def test_budget_allows_up_to_its_limit_only():
    budget = RetryBudget(limit=3.0)
    assert budget.allows(3.0)
    budget.spend(2.0)
    assert budget.allows(1.0) and not budget.allows(1.5)
