"""Function keys for HTTP auth levels, read from local settings instead of the host's key store.

`LOCAL_FUNCTION_KEY` holds one or more comma-separated function keys; `LOCAL_MASTER_KEY` the
master key. A caller gives a key as `?code=` or in the `x-functions-key` header. Function level
accepts a function key or the master key; admin level only the master key. Keys are compared in
constant time and never logged.
"""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Mapping

FUNCTION_KEYS_SETTING = "LOCAL_FUNCTION_KEY"
MASTER_KEY_SETTING = "LOCAL_MASTER_KEY"
KEY_HEADER = "x-functions-key"
KEY_PARAM = "code"

ANONYMOUS = "anonymous"
FUNCTION = "function"
ADMIN = "admin"

_CODE_IN_QUERY = re.compile(r"(?i)((?:^|[?&])code=)[^&#]*")


@dataclass(frozen=True)
class KeyRing:
    function_keys: tuple[str, ...] = ()
    master_key: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> "KeyRing":
        keys = tuple(k.strip() for k in (settings.get(FUNCTION_KEYS_SETTING) or "").split(",") if k.strip())
        master = (settings.get(MASTER_KEY_SETTING) or "").strip() or None
        return cls(keys, master)

    def allows(self, level: str, presented: str | None) -> bool:
        """True when the presented key is good enough for the auth level."""
        if level == ANONYMOUS:
            return True
        if not presented:
            return False
        if self.master_key and _same(presented, self.master_key):
            return True
        if level == FUNCTION:
            # Check every key, so the time taken does not tell which one was close.
            return any([_same(presented, key) for key in self.function_keys])
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def presented_key(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The key a request carries: the `code` query parameter wins over the header, as in Azure."""
    return query.get(KEY_PARAM) or headers.get(KEY_HEADER) or None


def redact_query(text: str) -> str:
    """A path or URL with the value of any `code=` parameter replaced, safe to log."""
    return _CODE_IN_QUERY.sub(r"\1<redacted>", text)
