import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, strategies as st

from sync.secret_box import SecretBinding, SecretBox, SecretUnreadable, key_id_of

KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
OWNER = SecretBinding("integration-a", "tenant-a", "client-a")

# Sealed by the first format's code (integration id as the only associated data, no key id),
# with KEY, for integration "0b9d3f7e-legacy-integration".
LEGACY_VALUE = "v1:_KEzFRqM2D9S0tnbDLqVvF6IyYGvfZ5sAHtpcDojewnJ664fmCei4oqWcUlZoskN"
LEGACY_OWNER = SecretBinding("0b9d3f7e-legacy-integration", "tenant-any", "client-any")

ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=40)


def legacy_seal(key: bytes, plaintext: str, integration_id: str) -> str:
    """The first format, written the way the code before key rotation wrote it."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), f"roomsync/secret/v1|{integration_id}".encode())
    return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


@given(secret=st.text(min_size=1, max_size=200), integration=ids, tenant=ids, client=ids)
def test_round_trip_for_its_own_record(secret, integration, tenant, client):
    box = SecretBox(KEY)
    binding = SecretBinding(integration, tenant, client)
    sealed = box.seal(secret, binding)
    assert sealed.startswith(f"v2:{box.key_id}:")
    assert box.open(sealed, binding) == secret


@pytest.mark.parametrize("other", [
    SecretBinding("integration-b", "tenant-a", "client-a"),
    SecretBinding("integration-a", "tenant-b", "client-a"),
    SecretBinding("integration-a", "tenant-a", "client-b"),
])
def test_a_value_bound_to_another_integration_tenant_or_app_does_not_open(other):
    box = SecretBox(KEY)
    sealed = box.seal("client-secret-value", OWNER)
    with pytest.raises(SecretUnreadable) as caught:
        box.open(sealed, other)
    assert "client-secret-value" not in str(caught.value)


def test_the_new_key_seals_and_the_old_key_still_opens():
    old_box = SecretBox(KEY)
    sealed_before = old_box.seal("client-secret-value", OWNER)
    rotated = SecretBox(NEW_KEY, old_keys=[KEY])
    assert rotated.open(sealed_before, OWNER) == "client-secret-value"
    assert not rotated.is_current(sealed_before)
    sealed_after = rotated.seal("client-secret-value", OWNER)
    assert rotated.is_current(sealed_after) and sealed_after.split(":")[1] == key_id_of(NEW_KEY)
    with pytest.raises(SecretUnreadable) as caught:
        old_box.open(sealed_after, OWNER)  # an instance still on the old key cannot read it
    assert caught.value.key_id == key_id_of(NEW_KEY)


def test_a_changed_key_without_the_old_one_is_unreadable_and_names_the_key_id_only():
    sealed = SecretBox(KEY).seal("client-secret-value", OWNER)
    with pytest.raises(SecretUnreadable) as caught:
        SecretBox(NEW_KEY).open(sealed, OWNER)
    message = str(caught.value)
    assert key_id_of(KEY) in message and "SECRET_ENCRYPTION_OLD_KEYS" in message
    assert KEY.hex() not in message and base64.b64encode(KEY).decode() not in message
    assert "client-secret-value" not in message


def test_values_of_the_first_format_still_open_with_current_or_old_keys():
    assert SecretBox(KEY).open(LEGACY_VALUE, LEGACY_OWNER) == "legacy-client-secret"
    assert SecretBox(NEW_KEY, old_keys=[KEY]).open(LEGACY_VALUE, LEGACY_OWNER) == "legacy-client-secret"
    assert not SecretBox(KEY).is_current(LEGACY_VALUE)
    with pytest.raises(SecretUnreadable):
        SecretBox(NEW_KEY).open(LEGACY_VALUE, LEGACY_OWNER)
    with pytest.raises(SecretUnreadable):
        SecretBox(KEY).open(LEGACY_VALUE, SecretBinding("another", "tenant-any", "client-any"))


@given(secret=st.text(min_size=1, max_size=100), integration=ids)
def test_first_format_values_open_for_their_integration(secret, integration):
    sealed = legacy_seal(KEY, secret, integration)
    assert SecretBox(NEW_KEY, old_keys=[KEY]).open(sealed, SecretBinding(integration, "t", "c")) == secret


def test_tampering_and_unknown_formats_are_refused():
    box = SecretBox(KEY)
    sealed = box.seal("client-secret-value", OWNER)
    prefix, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 0x01  # one bit of the authentication tag
    flipped = prefix + ":" + base64.urlsafe_b64encode(bytes(raw)).decode("ascii")
    for bad in (flipped, "v0:abc", "v2:", f"v2:{box.key_id}:", f"v2:{box.key_id}:!!!", "v1:", "garbage"):
        with pytest.raises(SecretUnreadable):
            box.open(bad, OWNER)
    # A value relabelled with another configured key's id does not open either.
    relabelled = sealed.replace(box.key_id, key_id_of(NEW_KEY))
    with pytest.raises(SecretUnreadable):
        SecretBox(KEY, old_keys=[NEW_KEY]).open(relabelled, OWNER)


def test_same_secret_seals_differently_each_time():
    box = SecretBox(KEY)
    assert box.seal("x", OWNER) != box.seal("x", OWNER)


def test_keys_must_be_32_bytes_and_are_never_shown():
    with pytest.raises(ValueError):
        SecretBox(b"short")
    with pytest.raises(ValueError):
        SecretBox(KEY, old_keys=[b"short"])
    shown = repr(SecretBox(KEY, old_keys=[NEW_KEY]))
    assert KEY.hex() not in shown and NEW_KEY.hex() not in shown and key_id_of(KEY) in shown


def test_key_ids_differ_per_key_and_repeat_for_the_same_key():
    assert key_id_of(KEY) == key_id_of(bytes(KEY)) != key_id_of(NEW_KEY)
    assert SecretBox(KEY, old_keys=[KEY, NEW_KEY]).key_ids == (key_id_of(KEY), key_id_of(NEW_KEY))
