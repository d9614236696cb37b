"""Turning outside identifiers into PartitionKey/RowKey values Azure Tables accepts.

Keys may not contain `/ \\ # ?` or control characters and are limited to 1 KiB, while Graph ids
contain `/ + =` and iCalUIds can be long. So:

- `encode_id` maps an id to unpadded url-safe base64 (alphabet `A-Z a-z 0-9 - _`). Padding is
  dropped because it carries no information and every key stays canonical: one id, one key.
- `hash_key` maps a long or untrusted value to its sha256 hex digest when it never has to be read back.
- `compose` joins parts with `SEPARATOR` ("!"). It sorts below every character either encoding
  produces, so composite keys sort like the tuples of their parts, and `prefix_range` can
  select every key that starts with given parts.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import string

from sync.store.errors import InvalidKeyError

MAX_KEY_BYTES = 1024
"""Keys are limited to 1 KiB; the service measures strings in UTF-16, so count 2 bytes per code unit."""

FORBIDDEN_CHARACTERS = frozenset("/\\#?")
SEPARATOR = "!"
_AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)
_ENCODED_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")


def _is_control(char: str) -> bool:
    code = ord(char)
    return code <= 0x1F or 0x7F <= code <= 0x9F


def _utf16_size(value: str) -> int:
    return sum(4 if ord(char) > 0xFFFF else 2 for char in value)


def validate_key(value: object, what: str = "RowKey") -> str:
    """Return `value` if Azure Tables accepts it as a key, else raise InvalidKeyError saying why.

    Checked here so a bad key fails fast with a clear message instead of a vague 400 later.
    """
    if not isinstance(value, str):
        raise InvalidKeyError(what, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidKeyError(what, "is empty")
    for position, char in enumerate(value):
        if char in FORBIDDEN_CHARACTERS:
            raise InvalidKeyError(what, "Azure Tables forbids / \\ # ? in keys; encode the value with encode_id()",
                                  char=char, position=position)
        if _is_control(char):
            raise InvalidKeyError(what, "Azure Tables forbids control characters in keys; encode the value with encode_id()",
                                  char=char, position=position)
        if "\ud800" <= char <= "\udfff":
            raise InvalidKeyError(what, "a lone surrogate is not valid Unicode", char=char, position=position)
    size = _utf16_size(value)
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(what, f"is {size} bytes in UTF-16, over the {MAX_KEY_BYTES}-byte limit; "
                                    "use hash_key() for long values")
    return value


def encode_id(identifier: str) -> str:
    """A key-safe, reversible form of an outside id (Graph ids hold `/`, `+` and `=`)."""
    if not isinstance(identifier, str):
        raise InvalidKeyError("id to encode", f"must be a string, not {type(identifier).__name__}")
    if not identifier:
        raise InvalidKeyError("id to encode", "is empty")
    try:
        raw = identifier.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError("id to encode", "a lone surrogate is not valid Unicode",
                              char=identifier[exc.start], position=exc.start) from None
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return validate_key(encoded, what="encoded id")


def decode_id(key: str) -> str:
    """The id that `encode_id` turned into `key`; refuses anything encode_id could not have produced."""
    what = "encoded id"
    if not isinstance(key, str):
        raise InvalidKeyError(what, f"must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError(what, "is empty")
    for position, char in enumerate(key):
        if char not in _ENCODED_ALPHABET:
            raise InvalidKeyError(what, "is outside the url-safe base64 alphabet", char=char, position=position)
    if len(key) % 4 == 1:
        raise InvalidKeyError(what, "has an impossible length for base64")
    try:
        identifier = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidKeyError(what, "does not decode to UTF-8 text") from None
    if base64.urlsafe_b64encode(identifier.encode("utf-8")).rstrip(b"=").decode("ascii") != key:
        raise InvalidKeyError(what, "is not in canonical form (stray low bits)")
    return identifier


def hash_key(value: str | bytes) -> str:
    """sha256 hex of `value`: a fixed 64-character key for iCalUIds and other long or raw values."""
    if isinstance(value, str):
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidKeyError("value to hash", "a lone surrogate is not valid Unicode",
                                  char=value[exc.start], position=exc.start) from None
    elif not isinstance(value, (bytes, bytearray)):
        raise InvalidKeyError("value to hash", f"must be str or bytes, not {type(value).__name__}")
    if not value:
        raise InvalidKeyError("value to hash", "is empty")
    return hashlib.sha256(value).hexdigest()


def compose(*parts: str) -> str:
    """Join key parts with SEPARATOR; each part must be a valid key without the separator."""
    if not parts:
        raise InvalidKeyError("composite key", "needs at least one part")
    for number, part in enumerate(parts):
        what = f"key part {number}"
        validate_key(part, what=what)
        position = part.find(SEPARATOR)
        if position >= 0:
            raise InvalidKeyError(what, f"{SEPARATOR!r} separates key parts; encode the part with encode_id()",
                                  char=SEPARATOR, position=position)
    return validate_key(SEPARATOR.join(parts), what="composite key")


def split(key: str) -> tuple[str, ...]:
    """The parts `compose` joined into `key`."""
    validate_key(key, what="composite key")
    return tuple(key.split(SEPARATOR))


def prefix_range(*parts: str) -> tuple[str, str]:
    """(low, high) such that `low <= key < high` holds exactly for keys composed from `parts` plus more.

    Use as `RowKey ge @low and RowKey lt @high` to read, say, every index row of one kind.
    """
    prefix = compose(*parts)
    return prefix + SEPARATOR, prefix + _AFTER_SEPARATOR
