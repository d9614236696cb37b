"""Which integration, asset, reservation and request a log line belongs to, on every line.

Code binds what it works on once (`with bind(integration_id=...)`) instead of repeating ids in
every message; the values live in a contextvar, so threads and concurrent invocations each keep
their own. `install()` makes every LogRecord (any logger, ours or a library's) carry them as flat
attributes: `integration_id`, `asset_id`, `reservation_id`, `correlation_id`.

Two ways reach Application Insights, because the Functions Python worker forwards only a log's
formatted text to the host and drops extra record attributes:
- with the OpenTelemetry distro (azure-monitor-opentelemetry), record attributes become
  `customDimensions.integration_id` etc. directly;
- with the host's built-in logging, handlers that have no formatter of their own (the worker's)
  get ContextFormatter, which ends the text with ` | ctx={"integration_id": ...}`; a query slices
  it with `extend ctx = parse_json(extract(@"\\| ctx=(\\{.*\\})$", 1, message))`.
Only ids are bound here, never secrets or subjects. Set these fields with bind(), never with
`extra=` (logging refuses an extra key that the record already has).
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import uuid
from typing import Any, Iterator, Mapping

FIELDS = ("integration_id", "asset_id", "reservation_id", "correlation_id")
CORRELATION_HEADERS = ("x-correlation-id", "x-request-id", "x-ms-client-request-id")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("roomsync_log_context", default={})
_installed_factory: Any = None


def current() -> dict[str, str]:
    """The fields bound in this context (only those that are set)."""
    return dict(_context.get())


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[dict[str, str]]:
    """Adds fields for the duration of the block; inner binds override outer ones, None is ignored."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown log context field {unknown[0]!r}; known: {', '.join(FIELDS)}")
    merged = {**_context.get(), **{name: str(value) for name, value in fields.items() if value not in (None, "")}}
    token = _context.set(merged)
    try:
        yield dict(merged)
    finally:
        _context.reset(token)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def safe_id(value: Any) -> str | None:
    """The value when it looks like an id (letters, digits, . _ : -), else None: request input
    bound to the context must not carry arbitrary text into the logs."""
    text = str(value).strip() if value is not None else ""
    return text if _SAFE_ID.fullmatch(text) else None


def ids_of(body: Any) -> dict[str, str | None]:
    """The integration, asset and reservation ids a queue message names (each only when it looks
    like an id), ready for bind(); a message that is not a JSON object names none."""
    if not isinstance(body, Mapping):
        return {}
    return {name: safe_id(body.get(name)) for name in ("integration_id", "asset_id", "reservation_id")}


def correlation_of_message(body: Any, message_id: Any) -> str:
    """A queue message's correlation id: the one it carries (the request that queued it), else
    the queue's message id, which stays the same over the host's retries of that message."""
    carried = safe_id(body.get("correlation_id")) if isinstance(body, Mapping) else None
    return carried or safe_id(message_id) or new_correlation_id()


def correlation_from_headers(headers: Mapping[str, str]) -> str:
    """The caller's correlation id when it sent a usable one (or a W3C traceparent's trace id),
    else a fresh one. Anything that does not look like an id is ignored, so a header cannot
    inject text into the logs."""
    lowered = {str(name).lower(): value for name, value in headers.items()}
    for name in CORRELATION_HEADERS:
        value = safe_id(lowered.get(name))
        if value:
            return value
    trace = _TRACEPARENT.fullmatch((lowered.get("traceparent") or "").strip().lower())
    if trace:
        return trace.group(1)
    return new_correlation_id()


class ContextFilter(logging.Filter):
    """Sets the bound fields on records that lack them (for handlers added by hand)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class ContextFormatter(logging.Formatter):
    """The usual text followed by ` | ctx={...}` with the record's context fields, when it has any."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = context_of(record)
        return f"{text} | ctx={json.dumps(fields, sort_keys=True, separators=(',', ':'))}" if fields else text


def context_of(record: logging.LogRecord) -> dict[str, str]:
    return {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None}


def install() -> None:
    """Makes every record carry the bound fields and gives formatter-less root handlers the
    context formatter. Idempotent: a second call changes nothing."""
    global _installed_factory
    if _installed_factory is None:  # once per process, whatever other factories wrap it later
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            for name, value in _context.get().items():
                setattr(record, name, value)
            return record

        logging.setLogRecordFactory(factory)
        _installed_factory = factory
    for handler in logging.getLogger().handlers:
        if handler.formatter is None:
            handler.setFormatter(ContextFormatter())
