"""Microsoft's own SDK against the emulator: msgraph-sdk reads users, users delta, rooms through
its `places.graph_room` builder, a room list's rooms, events, instances, a room's calendarView
delta and subscriptions (bench/msgraph_sdk_reads.py does the reads and checks each against what
it seeded). Skipped when msgraph-sdk is not installed (it lives in requirements-bench.txt)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("msgraph", reason="msgraph-sdk is in requirements-bench.txt")


def test_msgraph_sdk_reads_what_was_seeded():
    """https://learn.microsoft.com/en-us/graph/sdks/sdks-overview: the SDK is generated from
    Graph's metadata, so its URL spellings and parsers are Graph's own."""
    from bench.msgraph_sdk_reads import run_reads

    # A thread of its own: the SDK runs its own event loop, and one may already run on this thread
    # (browser tests drive Playwright's from here).
    with ThreadPoolExecutor(max_workers=1) as pool:
        checks = pool.submit(run_reads).result()
    assert [c.name for c in checks if not c.ok] == [], "\n".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
    assert len(checks) == 10
