"""Key rules of Azure Tables, checked without a service: what is refused, and that encodings round-trip."""
from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sync.store.errors import InvalidKeyError, StoreError
from sync.store.keys import (
    MAX_KEY_BYTES,
    SEPARATOR,
    compose,
    decode_id,
    encode_id,
    hash_key,
    prefix_range,
    split,
    validate_key,
)

FORBIDDEN = "/\\#?"
CONTROL = [chr(code) for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]
ENCODED_ALPHABET = set(string.ascii_letters + string.digits + "-_")


def _allowed(char: str) -> bool:
    code = ord(char)
    return char not in FORBIDDEN and not (code <= 0x1F or 0x7F <= code <= 0x9F)


allowed_text = st.text(st.characters(exclude_categories=("Cs",)).filter(_allowed), min_size=1, max_size=200)
encoded_parts = st.text(st.sampled_from(sorted(ENCODED_ALPHABET)), min_size=1, max_size=12)


@pytest.mark.parametrize("char", list(FORBIDDEN))
def test_each_forbidden_character_is_refused_with_its_name_and_position(char):
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(f"ab{char}cd", what="RowKey")
    error = caught.value
    assert (error.char, error.position, error.what) == (char, 2, "RowKey")
    assert repr(char) in str(error) and "position 2" in str(error) and "RowKey" in str(error)


@given(st.sampled_from(CONTROL), st.text(alphabet="abc", max_size=5))
def test_control_characters_are_refused_by_code_point(char, prefix):
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(prefix + char + "z", what="PartitionKey")
    assert caught.value.position == len(prefix)
    assert f"U+{ord(char):04X}" in str(caught.value)
    assert "PartitionKey" in str(caught.value)


@given(allowed_text)
def test_text_without_forbidden_characters_is_accepted(text):
    assert validate_key(text) == text  # at most 200 characters: within 1 KiB even if all are astral


@given(allowed_text, st.sampled_from([*FORBIDDEN, *CONTROL]), allowed_text)
def test_the_first_forbidden_character_is_the_one_reported(before, bad, after):
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(before[:100] + bad + after[:100])
    assert (caught.value.char, caught.value.position) == (bad, len(before[:100]))


def test_size_is_counted_in_utf16_bytes():
    assert validate_key("a" * (MAX_KEY_BYTES // 2))
    with pytest.raises(InvalidKeyError, match="UTF-16"):
        validate_key("a" * (MAX_KEY_BYTES // 2 + 1))
    astral = "\U0001F600"  # two UTF-16 code units
    assert validate_key(astral * (MAX_KEY_BYTES // 4))
    with pytest.raises(InvalidKeyError):
        validate_key(astral * (MAX_KEY_BYTES // 4 + 1))


@pytest.mark.parametrize("value, problem", [("", "empty"), (None, "string"), (42, "string"), ("a\ud800b", "surrogate")])
def test_empty_non_text_and_broken_unicode_keys_are_refused(value, problem):
    with pytest.raises(InvalidKeyError, match=problem):
        validate_key(value)


def test_invalid_key_errors_are_store_errors_and_value_errors():
    with pytest.raises(StoreError):
        validate_key("a/b")
    with pytest.raises(ValueError):
        validate_key("a/b")


@given(st.text(min_size=1, max_size=300))
def test_encode_id_round_trips_and_is_always_a_valid_key(identifier):
    key = encode_id(identifier)
    assert decode_id(key) == identifier
    assert set(key) <= ENCODED_ALPHABET
    assert validate_key(key) == key


@pytest.mark.parametrize("identifier", [
    "AAMkAGI2TG93AAA/ab+cd==",
    "folder\\item#1?x=2",
    "\x00\x1f\x7f\x9f",
    "040000008200E00074C5B7101A82E008000000/+=",
    "ümlaut 日本 \U0001F600 'quoted'",
])
def test_graph_like_ids_with_forbidden_characters_encode_to_clean_keys(identifier):
    key = encode_id(identifier)
    assert not set(key) & set(FORBIDDEN) and "=" not in key
    assert decode_id(key) == identifier


@pytest.mark.parametrize("key, problem", [
    ("abc/def", "alphabet"),
    ("ab=c", "alphabet"),
    ("abcde", "length"),
    ("QUJDRA", "canonical"),  # 'ABCD' is QUJDRA; stray bits make QUJDRB decode the same
    ("_w", "UTF-8"),  # one byte 0xFF: not UTF-8
    ("", "empty"),
])
def test_decode_id_refuses_anything_encode_id_cannot_produce(key, problem):
    if problem == "canonical":
        assert decode_id(key) == "ABCD"
        key = key[:-1] + "B"
    with pytest.raises(InvalidKeyError, match=problem):
        decode_id(key)


def test_encode_id_refuses_empty_and_non_text():
    with pytest.raises(InvalidKeyError, match="empty"):
        encode_id("")
    with pytest.raises(InvalidKeyError, match="string"):
        encode_id(b"bytes")


def test_encode_id_refuses_ids_too_long_for_a_key():
    with pytest.raises(InvalidKeyError, match="encoded id"):
        encode_id("x" * 600)


def test_hash_key_is_sha256_hex_of_the_utf8_text():
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 vector
    assert hash_key("日本") == hash_key("日本".encode("utf-8"))


@given(st.text(min_size=1, max_size=2000))
def test_hash_key_is_a_valid_fixed_length_key_for_any_text(value):
    key = hash_key(value)
    assert len(key) == 64 and set(key) <= set("0123456789abcdef")
    assert key == hashlib.sha256(value.encode("utf-8")).hexdigest()
    assert validate_key(key) == key


def test_hash_key_refuses_empty_values():
    with pytest.raises(InvalidKeyError, match="empty"):
        hash_key("")


@given(st.lists(encoded_parts, min_size=1, max_size=5))
def test_compose_and_split_round_trip(parts):
    assert split(compose(*parts)) == tuple(parts)


@given(st.lists(encoded_parts, min_size=1, max_size=4), st.lists(encoded_parts, min_size=1, max_size=4))
@example(left=["a", "b"], right=["ab"])
@example(left=["a", "-"], right=["a-"])
def test_composite_keys_sort_like_the_tuples_of_their_parts(left, right):
    assert (compose(*left) < compose(*right)) == (tuple(left) < tuple(right))


@given(st.lists(encoded_parts, min_size=1, max_size=3), st.lists(encoded_parts, min_size=1, max_size=3))
def test_prefix_range_holds_exactly_the_keys_that_extend_the_prefix(prefix, other):
    low, high = prefix_range(*prefix)
    extended = compose(*prefix, *other)
    assert low <= extended < high
    unrelated = compose(*other)
    extends = tuple(other[: len(prefix)]) == tuple(prefix) and len(other) > len(prefix)
    assert (low <= unrelated < high) == extends


def test_compose_refuses_the_separator_and_forbidden_characters_inside_parts():
    with pytest.raises(InvalidKeyError) as caught:
        compose("ok", f"a{SEPARATOR}b")
    assert (caught.value.char, caught.value.position, caught.value.what) == (SEPARATOR, 1, "key part 1")
    with pytest.raises(InvalidKeyError) as caught:
        compose("a#b")
    assert (caught.value.char, caught.value.what) == ("#", "key part 0")
    with pytest.raises(InvalidKeyError, match="at least one part"):
        compose()
    with pytest.raises(InvalidKeyError, match="composite key"):
        compose("a" * 300, "b" * 300)
