"""Keeping storage credentials out of logs.

A SAS connection string puts its signature in every request URL, and text from the HTTP stack
quotes those URLs: urllib3 logs each request line at DEBUG, and a transport error or a service's
error body may repeat the address or the connection string. `redact` blanks the values that
grant access (`sig=`, `AccountKey=`, `SharedAccessSignature=`, SharedKey and bearer
authorization) and keeps the rest readable.

`install_log_redaction` applies it to every log record when the record is made, so it holds for
all handlers, including the ones the Functions worker adds after the app has loaded. Our own
error texts about storage (sync/store/errors.py) go through `redact` as well.
"""
from __future__ import annotations

import logging
import re
import threading

REDACTED = "REDACTED"

_PATTERNS = (
    # A SAS signature in a query string or a connection string, plain or percent-encoded.
    (re.compile(r"(?i)(\bsig=)[^&\s;'\"<>]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\bsig%3D)[^&\s;'\"<>]+"), r"\1" + REDACTED),
    # Connection-string parts that are credentials themselves (a SAS runs up to the next ';').
    (re.compile(r"(?i)(\bAccountKey=)[^;\s'\"<>]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\bSharedAccessSignature=)[^;\s'\"<>]+"), r"\1" + REDACTED),
    # Authorization header values.
    (re.compile(r"(?i)(\bSharedKey(?:Lite)?\s+[^:\s]+:)[A-Za-z0-9+/=]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + REDACTED),
)


def redact(text: str) -> str:
    """The text with storage credentials blanked out."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, exception text and stack in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 -- a malformed record is logging's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_install_lock = threading.Lock()
_installed = False


def install_log_redaction() -> None:
    """Makes every log record of the process pass through RedactSecrets as it is created (once)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()
        redactor = RedactSecrets()

        def make_record(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redactor.filter(record)
            return record

        logging.setLogRecordFactory(make_record)
        _installed = True
