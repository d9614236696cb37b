"""Identifiers of calendar items, shaped like Outlook's.

- Event ids are opaque base64 (with `/`, `+`, `=`), different in every mailbox.
- An occurrence id is derived from its series master's id and original start, so GET by
  occurrence id works without storing occurrences; an exception keeps its occurrence's id.
- iCalUIds follow Outlook's Global Object ID layout (hex): a fixed class id, then four bytes of
  instance date (zero for a series master or single event), a creation stamp and random bytes.
  All copies of one meeting share it, and each occurrence's differs only in the date bytes.
- changeKey is a new opaque value on every change; `@odata.etag` is `W/"<changeKey>"`.
"""
from __future__ import annotations

import base64
import binascii
import os
import struct
from datetime import date, datetime, timezone

_GOID_CLASS = "040000008200E00074C5B7101A82E008"
_OCCURRENCE_MAGIC = b"\x07OCC"
_OUTLOOK_PREFIX = "AAMkAG"


def new_change_key() -> str:
    return "DwAAABYAAAA" + base64.b64encode(os.urandom(12)).decode("ascii")


def etag(change_key: str) -> str:
    return f'W/"{change_key}"'


def if_match_allows(header: str | None, change_key: str) -> bool:
    """Whether an `If-Match` header lets a write through: absent, `*`, or naming the item's
    current changeKey (as `W/"key"`, `"key"` or the bare key; a list may name several)."""
    if header is None or not header.strip():
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag[:2].upper() == "W/":
            tag = tag[2:]
        if tag.strip('"') == change_key:
            return True
    return False


def new_ical_uid(created: datetime) -> str:
    """A Global Object ID in hex: class id, zero instance date, FILETIME stamp, reserved, data."""
    filetime = int((created.timestamp() + 11644473600) * 10_000_000)
    stamp = struct.pack("<Q", filetime).hex().upper()
    data = os.urandom(16).hex().upper()
    return _GOID_CLASS + "00000000" + stamp + "0000000000000000" + "10000000" + data


def occurrence_ical_uid(master_uid: str, local_day: date) -> str:
    """The master's iCalUId with the occurrence's date in the instance-date bytes."""
    if len(master_uid) < 40 or not master_uid.upper().startswith(_GOID_CLASS):
        return f"{master_uid}-{local_day.isoformat()}"
    stamp = f"{local_day.year:04X}{local_day.month:02X}{local_day.day:02X}"
    return master_uid[:32] + stamp + master_uid[40:]


def occurrence_id(master_id: str, original_start: datetime) -> str:
    seconds = int(original_start.astimezone(timezone.utc).timestamp())
    raw = _OCCURRENCE_MAGIC + struct.pack(">q", seconds) + master_id.encode("utf-8")
    return _OUTLOOK_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_occurrence_id(item_id: str) -> tuple[str, datetime] | None:
    """(master id, original start in UTC) for an occurrence id, else None."""
    if not item_id.startswith(_OUTLOOK_PREFIX):
        return None
    try:
        raw = base64.b64decode(item_id[len(_OUTLOOK_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 13 or not raw.startswith(_OCCURRENCE_MAGIC):
        return None
    (seconds,) = struct.unpack(">q", raw[4:12])
    try:
        return raw[12:].decode("utf-8"), datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (UnicodeDecodeError, OverflowError, OSError, ValueError):
        return None
