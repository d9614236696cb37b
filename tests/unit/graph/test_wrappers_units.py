from datetime import datetime, timezone

import pytest

from graph.events import ExtendedProperty, outlook_headers
from graph.http import loggable_url, trust_bundle
from graph.paths import odata_string, query_string, segment
from graph.timestamps import graph_time, parse_graph_time
from graph.subscriptions import (
    DIRECTORY_MAX_MINUTES, OUTLOOK_MAX_MINUTES, documented_max_minutes, max_minutes_from_error,
)


def test_outlook_ids_are_one_encoded_segment():
    assert segment("AAMkAG/x+y==") == "AAMkAG%2Fx%2By%3D%3D"
    assert segment("room@contoso.com") == "room%40contoso.com"
    with pytest.raises(ValueError):
        segment("")


def test_odata_literals_double_quotes():
    assert odata_string("O'Brien") == "'O''Brien'"


def test_query_string_keeps_dollar_and_encodes_spaces():
    assert query_string({"$top": 5, "$filter": "a eq 'b c'", "skip": None}) == "$top=5&$filter=a%20eq%20'b%20c'"


def test_graph_time_is_utc_and_refuses_naive_datetimes():
    from datetime import timedelta
    zone = timezone(timedelta(hours=2))
    assert graph_time(datetime(2024, 3, 1, 10, 0, tzinfo=zone)) == "2024-03-01T08:00:00Z"
    with pytest.raises(ValueError):
        graph_time(datetime(2024, 3, 1))


@pytest.mark.parametrize("text", ["2024-03-01T08:00:00.1234567Z", "2024-03-01T09:00:00.1234567+01:00",
                                  "2024-03-01T08:00:00.1234567"])
def test_graph_timestamps_parse_to_aware_utc(text):
    assert parse_graph_time(text) == datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=timezone.utc)


def test_extended_property_id_has_the_documented_form():
    tag = ExtendedProperty("8eccc264-6880-4ebe-992f-8888d2eeaa1d", "RoomsyncReservation")
    assert tag.id == "String {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Name RoomsyncReservation"
    assert tag.value_of({"singleValueExtendedProperties": [{"id": tag.id.lower(), "value": "r1"}]}) == "r1"
    assert tag.value_of({}) is None
    assert tag.expand() == ("singleValueExtendedProperties($filter=id eq "
                            "'String {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Name RoomsyncReservation')")
    with pytest.raises(ValueError):
        ExtendedProperty("not-a-guid", "x")


def test_event_calls_ask_for_utc_and_immutable_ids():
    prefer = outlook_headers("odata.maxpagesize=50")["Prefer"]
    assert prefer == 'outlook.timezone="UTC", IdType="ImmutableId", odata.maxpagesize=50'


@pytest.mark.parametrize("message, minutes", [
    ("Subscription expiration can only be 10070 minutes in the future.", 10070),
    ("Subscription expiration can only be 4230 minutes in the future.", 4230),
    ("Operation: Create; Exception: [Status Code: BadRequest; Reason: Expiration time '2024' is beyond "
     "allowed max '3.00:00:00'.]", 4320),
    ("Something else", None),
])
def test_maximum_named_by_graph(message, minutes):
    assert max_minutes_from_error(message) == minutes


@pytest.mark.parametrize("resource, minutes", [
    ("users/room@x.com/events", OUTLOOK_MAX_MINUTES),
    ("/users/abc/calendar/events", OUTLOOK_MAX_MINUTES),
    ("users", DIRECTORY_MAX_MINUTES),
    ("/users/abc", DIRECTORY_MAX_MINUTES),
])
def test_documented_maximum_by_resource(resource, minutes):
    assert documented_max_minutes(resource) == minutes


def test_loggable_urls_drop_query_values():
    url = "https://graph/v1.0/users/delta?$deltatoken=SECRETTOKEN&$select=id,mail"
    assert loggable_url(url) == "/v1.0/users/delta?$deltatoken&$select"


def test_extra_ca_is_added_to_the_default_store(tmp_path, monkeypatch):
    extra = tmp_path / "extra.pem"
    extra.write_text("-----BEGIN CERTIFICATE-----\nEXTRA\n-----END CERTIFICATE-----\n")
    defaults = tmp_path / "defaults.pem"
    defaults.write_text("-----BEGIN CERTIFICATE-----\nDEFAULT\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(defaults))
    assert trust_bundle(None) is True
    combined = open(trust_bundle(str(extra))).read()
    assert "EXTRA" in combined and "DEFAULT" in combined
