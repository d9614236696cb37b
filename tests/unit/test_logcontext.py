"""The log context: bound ids reach every record, nest, stay per thread, and reach the text of
handlers that have no formatter of their own (the Functions worker's)."""
from __future__ import annotations

import json
import logging
import threading

import pytest

from sync import logcontext


@pytest.fixture(autouse=True)
def installed():
    logcontext.install()


def record_of(logger_name: str = "sync.test", message: str = "hello") -> logging.LogRecord:
    return logging.getLogger(logger_name).makeRecord(logger_name, logging.INFO, __file__, 1, message, (), None)


def test_bound_fields_are_attributes_of_every_record_any_logger():
    with logcontext.bind(integration_id="i-1", correlation_id="c-1"):
        with logcontext.bind(asset_id="a-2", reservation_id=None):
            inner = record_of("azure.core.pipeline")
        outer = record_of()
    after = record_of()
    assert (inner.integration_id, inner.asset_id, inner.correlation_id) == ("i-1", "a-2", "c-1")
    assert not hasattr(inner, "reservation_id")
    assert outer.integration_id == "i-1" and not hasattr(outer, "asset_id")
    assert logcontext.context_of(after) == {}


def test_an_inner_bind_overrides_and_then_restores():
    with logcontext.bind(asset_id="outer"):
        with logcontext.bind(asset_id="inner"):
            assert logcontext.current() == {"asset_id": "inner"}
        assert logcontext.current() == {"asset_id": "outer"}


def test_unknown_fields_are_refused_with_their_name():
    with pytest.raises(ValueError, match="'tenant'"):
        with logcontext.bind(tenant="x"):
            pass


def test_each_thread_keeps_its_own_context():
    seen: dict[str, dict] = {}
    started = threading.Barrier(2)

    def work(name: str) -> None:
        with logcontext.bind(integration_id=name):
            started.wait(timeout=5)
            seen[name] = logcontext.context_of(record_of())

    threads = [threading.Thread(target=work, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert seen == {"first": {"integration_id": "first"}, "second": {"integration_id": "second"}}


def test_the_formatter_appends_the_context_as_json_that_a_query_can_parse():
    formatter = logcontext.ContextFormatter()
    with logcontext.bind(integration_id="i-9", correlation_id="c-9"):
        text = formatter.format(record_of(message="user sync applied"))
    message, _, payload = text.partition(" | ctx=")
    assert message == "user sync applied"
    assert json.loads(payload) == {"integration_id": "i-9", "correlation_id": "c-9"}
    assert formatter.format(record_of(message="no context")) == "no context"


def test_install_gives_only_formatter_less_root_handlers_the_context_formatter():
    bare, styled = logging.Handler(), logging.Handler()
    own = logging.Formatter("%(levelname)s %(message)s")
    styled.setFormatter(own)
    root = logging.getLogger()
    root.addHandler(bare)
    root.addHandler(styled)
    try:
        logcontext.install()
        logcontext.install()
        assert isinstance(bare.formatter, logcontext.ContextFormatter)
        assert styled.formatter is own
    finally:
        root.removeHandler(bare)
        root.removeHandler(styled)


def test_records_logged_through_a_logger_carry_the_context(caplog):
    caplog.set_level(logging.INFO, logger="sync.test")
    with logcontext.bind(reservation_id="r-5"):
        logging.getLogger("sync.test").info("cancelled")
    (record,) = [r for r in caplog.records if r.getMessage() == "cancelled"]
    assert record.reservation_id == "r-5"


@pytest.mark.parametrize("headers, expected", [
    ({"X-Correlation-Id": "abc-123"}, "abc-123"),
    ({"x-request-id": "req.7"}, "req.7"),
    ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "0af7651916cd43dd8448eb211c80319c"),
])
def test_a_caller_s_correlation_id_is_kept(headers, expected):
    assert logcontext.correlation_from_headers(headers) == expected


def test_a_header_that_is_not_an_id_gets_a_fresh_correlation_id():
    made = logcontext.correlation_from_headers({"x-correlation-id": "evil\nINFO forged line"})
    assert "\n" not in made and len(made) == 32
    assert logcontext.correlation_from_headers({}) != logcontext.correlation_from_headers({})
    assert logcontext.safe_id("x" * 101) is None and logcontext.safe_id(" ok-1 ") == "ok-1"
