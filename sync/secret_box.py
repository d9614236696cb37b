"""Client secrets at rest: AES-256-GCM bound to the owning integration, with key rotation
(RELIABILITY.md §4.3).

A sealed value reads `v2:<key id>:<base64url(nonce | ciphertext | tag)>`. The key id is derived
from the key itself (an HMAC of a fixed label, 16 hex digits), so no setting has to name it and
an operator can tell which key sealed a value without seeing the key. The current key
(SECRET_ENCRYPTION_KEY) seals; older keys (SECRET_ENCRYPTION_OLD_KEYS) still open, until
`python -m sync.reseal` has moved every value to the current key.

The associated data binds the format, the key id, the integration id, the tenant id and the
client id: a value copied to another row, or left under a row whose tenant or app was changed,
does not open. Values of the first format (`v1:`, integration id only, no key id) still open with
any configured key, so existing rows keep working; re-sealing turns them into v2.

A value no configured key opens raises SecretUnreadable: that is the operator's problem (a key
missing from the settings, or a tampered row), never the customer's credentials.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CURRENT_FORMAT = "v2"
LEGACY_FORMAT = "v1"
_NONCE_BYTES = 12
_KEY_ID_LABEL = b"roomsync/secret-key-id/v1"


def key_id_of(key: bytes) -> str:
    """A short public name of a key: it identifies the key without revealing it."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


class SecretUnreadable(Exception):
    """No configured key opens the sealed secret. `key_id` is the key that sealed it (None for
    the old format); the message names the key id and the settings, never key material."""

    def __init__(self, reason: str, *, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.key_id = key_id


@dataclass(frozen=True)
class SecretBinding:
    """What a sealed secret belongs to. Ids are compared case-insensitively (GUIDs)."""

    integration_id: str
    tenant_id: str
    client_id: str

    def associated_data(self, key_id: str) -> bytes:
        parts = (CURRENT_FORMAT, key_id, self.integration_id, self.tenant_id, self.client_id)
        return ("roomsync/secret|" + "|".join(part.strip().lower() for part in parts)).encode("utf-8")

    def legacy_associated_data(self) -> bytes:
        return f"roomsync/secret/{LEGACY_FORMAT}|{self.integration_id}".encode("utf-8")


class SecretBox:
    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        keys = [key, *old_keys]
        for candidate in keys:
            if len(candidate) != 32:
                raise ValueError("secret encryption keys must be 32 bytes (AES-256)")
        self.key_id = key_id_of(key)
        self._keys: dict[str, AESGCM] = {}
        for candidate in keys:
            self._keys.setdefault(key_id_of(candidate), AESGCM(candidate))

    def __repr__(self) -> str:  # never show key material
        return f"SecretBox(current key {self.key_id}, {len(self._keys) - 1} old key(s))"

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key that opens values, the current one first."""
        return tuple(self._keys)

    def seal(self, plaintext: str, binding: SecretBinding) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.key_id].encrypt(nonce, plaintext.encode("utf-8"), binding.associated_data(self.key_id))
        return f"{CURRENT_FORMAT}:{self.key_id}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, binding: SecretBinding) -> str:
        """The plaintext, or SecretUnreadable saying why not (without quoting the value)."""
        version, _, rest = sealed.partition(":")
        if version == CURRENT_FORMAT:
            key_id, _, payload = rest.partition(":")
            aead = self._keys.get(key_id)
            if aead is None:
                raise SecretUnreadable(
                    f"the client secret was sealed with key {key_id or '(none)'}, which is neither "
                    "SECRET_ENCRYPTION_KEY nor listed in SECRET_ENCRYPTION_OLD_KEYS", key_id=key_id or None)
            plaintext = _decrypt(aead, payload, binding.associated_data(key_id))
            if plaintext is None:
                raise SecretUnreadable(
                    f"the client secret does not decrypt with its key {key_id}: the row was altered or "
                    "copied from another integration", key_id=key_id)
            return plaintext
        if version == LEGACY_FORMAT:
            for aead in self._keys.values():
                plaintext = _decrypt(aead, rest, binding.legacy_associated_data())
                if plaintext is not None:
                    return plaintext
            raise SecretUnreadable(
                "the client secret (sealed before key ids existed) opens with none of SECRET_ENCRYPTION_KEY "
                "and SECRET_ENCRYPTION_OLD_KEYS: add the key it was sealed with to SECRET_ENCRYPTION_OLD_KEYS")
        raise SecretUnreadable("the sealed client secret has an unknown format")

    def is_current(self, sealed: str) -> bool:
        """True when the value is sealed in the current format with the current key."""
        version, _, rest = sealed.partition(":")
        return version == CURRENT_FORMAT and rest.partition(":")[0] == self.key_id


def _decrypt(aead: AESGCM, payload: str, associated_data: bytes) -> str | None:
    if not payload:
        return None
    try:
        raw = base64.urlsafe_b64decode(payload.encode("ascii"))
        plaintext = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated_data)
    except (InvalidTag, ValueError, binascii.Error, UnicodeEncodeError):
        return None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        return None
