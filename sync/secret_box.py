"""Client secrets at rest: AES-256-GCM with the owning row's id bound as associated data, so a
ciphertext copied to another integration's row does not decrypt (RELIABILITY.md §4.3)."""
from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = "v1"
_NONCE_BYTES = 12


class SecretDecryptionError(Exception):
    """The sealed value was tampered with, belongs to another row, or the key changed."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("secret encryption key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never show key material
        return "SecretBox(<key hidden>)"

    @staticmethod
    def _associated_data(bound_to: str) -> bytes:
        return f"roomsync/secret/{_FORMAT}|{bound_to}".encode("utf-8")

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), self._associated_data(bound_to))
        return f"{_FORMAT}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, bound_to: str) -> str:
        version, _, payload = sealed.partition(":")
        if version != _FORMAT or not payload:
            raise SecretDecryptionError("sealed secret has an unknown format")
        try:
            raw = base64.urlsafe_b64decode(payload.encode("ascii"))
            plaintext = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._associated_data(bound_to))
        except (InvalidTag, ValueError):
            raise SecretDecryptionError(
                "sealed secret does not decrypt for this record (wrong key, tampered, or copied from another record)"
            ) from None
        return plaintext.decode("utf-8")
