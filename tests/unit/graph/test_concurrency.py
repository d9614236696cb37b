import threading

import pytest

from graph.concurrency import MailboxLimiter, mailbox_key
from tests.support.polling import wait_for


def test_keys_ignore_case_and_whitespace():
    assert mailbox_key("T", " Room@Contoso.com ") == mailbox_key("t", "room@contoso.com")


def test_never_more_than_the_limit_in_flight_per_mailbox():
    limiter = MailboxLimiter(limit=4)
    key, other = ("t", "room@x"), ("t", "other@x")
    peak = {key: 0, other: 0}
    lock = threading.Lock()
    gate = threading.Barrier(12)
    release = threading.Event()

    def work(target):
        gate.wait()
        with limiter.slot(target):
            with lock:
                peak[target] = max(peak[target], limiter.in_flight(target))
            release.wait(10)  # hold the slot until every thread that can get one has one

    threads = [threading.Thread(target=work, args=(key if i < 10 else other,)) for i in range(12)]
    for t in threads:
        t.start()
    wait_for(lambda: limiter.in_flight(key) == 4 and limiter.in_flight(other) == 2, what="slots taken")
    release.set()
    for t in threads:
        t.join(10)
    assert peak[key] == 4 and peak[other] == 2
    assert limiter.in_flight(key) == 0


def test_multi_slot_claims_are_atomic_and_clipped():
    limiter = MailboxLimiter(limit=4)
    a, b = ("t", "a"), ("t", "b")
    with limiter.slots({a: 9, b: 1}):
        assert limiter.in_flight(a) == 4 and limiter.in_flight(b) == 1
        acquired = threading.Event()

        def other():
            with limiter.slots({b: 2, a: 1}):
                acquired.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not acquired.wait(0.1)  # a is full, so nothing of the claim is taken
        assert limiter.in_flight(b) == 1
    thread.join(2)
    assert acquired.is_set()
    assert limiter.in_flight(a) == 0 and limiter.in_flight(b) == 0


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        MailboxLimiter(limit=0)
