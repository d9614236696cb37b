import base64
import os

import pytest
from hypothesis import given, strategies as st

from sync.secret_box import SecretBox, SecretDecryptionError

KEY = bytes(range(32))


@given(secret=st.text(min_size=1, max_size=200), owner=st.text(min_size=1, max_size=60))
def test_round_trip_for_its_own_record(secret, owner):
    box = SecretBox(KEY)
    assert box.open(box.seal(secret, owner), owner) == secret


def test_ciphertext_copied_to_another_record_does_not_decrypt():
    box = SecretBox(KEY)
    sealed = box.seal("client-secret-value", "integration-a")
    with pytest.raises(SecretDecryptionError):
        box.open(sealed, "integration-b")


def test_other_key_or_tampering_is_refused_without_leaking_the_secret():
    sealed = SecretBox(KEY).seal("client-secret-value", "i1")
    with pytest.raises(SecretDecryptionError) as info:
        SecretBox(os.urandom(32)).open(sealed, "i1")
    assert "client-secret-value" not in str(info.value)
    raw = bytearray(base64.urlsafe_b64decode(sealed.split(":", 1)[1]))
    raw[-1] ^= 0x01  # one bit of the authentication tag
    flipped = "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode("ascii")
    with pytest.raises(SecretDecryptionError):
        SecretBox(KEY).open(flipped, "i1")
    with pytest.raises(SecretDecryptionError):
        SecretBox(KEY).open("v0:abc", "i1")


def test_same_secret_seals_differently_each_time():
    box = SecretBox(KEY)
    assert box.seal("x", "i1") != box.seal("x", "i1")


def test_key_must_be_32_bytes_and_is_never_shown():
    with pytest.raises(ValueError):
        SecretBox(b"short")
    assert KEY.hex() not in repr(SecretBox(KEY))
