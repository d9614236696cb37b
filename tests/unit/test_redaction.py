"""sync.redaction: storage credentials are blanked out of any text, the rest stays readable."""
import logging

import pytest
from hypothesis import assume, given, strategies as st

from sync.redaction import REDACTED, RedactSecrets, redact

SIG = "tyY3JUo3S/VK2y5YF81TIIg5OBTet3a0NKfHR0pZeEM%3D"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.mark.parametrize("text, secret, kept", [
    (f'"POST /devstoreaccount1/Tables?se=2026-12-04&sp=rl&sv=2019-02-02&sig={SIG} HTTP/1.1" 403', SIG, "sp=rl"),
    (f"url: /x?sig%3D{SIG}&a=1", SIG, "a=1"),
    (f"AccountName=acct;AccountKey={KEY};TableEndpoint=https://t", KEY, "TableEndpoint=https://t"),
    (f"SharedAccessSignature=sv=2019&sig={SIG};QueueEndpoint=https://q", "sv=2019", "QueueEndpoint=https://q"),
    ("Authorization: SharedKey devstoreaccount1:abcDEF123+/=", "abcDEF123", "devstoreaccount1"),
    ("Authorization: Bearer eyJ0eXAi.eyJhdWQi.c2ln", "eyJ0eXAi", "Authorization"),
])
def test_credentials_are_blanked_and_the_rest_kept(text, secret, kept):
    cleaned = redact(text)
    assert secret not in cleaned and REDACTED in cleaned and kept in cleaned


@given(st.text(alphabet=st.characters(blacklist_characters="="), max_size=80))
def test_text_without_credentials_is_unchanged(text):
    assume("bearer" not in text.lower() and "sharedkey" not in text.lower() and "%3d" not in text.lower())
    assert redact(text) == text


def test_the_filter_rewrites_message_arguments_and_exception_text():
    try:
        raise RuntimeError(f"Max retries exceeded with url: /t?sig={SIG}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", (f"?sig={SIG}",),
                                   exc_info=__import__("sys").exc_info())
    assert RedactSecrets().filter(record) is True
    assert SIG not in record.getMessage() and SIG not in record.exc_text
    assert SIG not in logging.Formatter().format(record)
