from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from devtools.graph_emulator.time_zones import parse_local

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize("text, expected_utc_hour", [
    ("2026-01-05T10:00:00.1234567Z", 10),        # an explicit Z wins over the zone
    ("2026-01-05T10:00:00.1234567+02:00", 8),    # so does an explicit offset, with a fraction
    ("2026-01-05T10:00:00+02:00", 8),
    ("2026-01-05T10:00:00.0000000", 9),          # no offset: read in the zone (UTC+1 in winter)
])
def test_explicit_offsets_win_and_zone_less_times_are_local(text, expected_utc_hour):
    parsed = parse_local(text, AMSTERDAM)
    assert parsed.tzinfo == timezone.utc
    assert parsed.hour == expected_utc_hour


def test_seven_fraction_digits_are_kept_to_the_microsecond():
    parsed = parse_local("2026-01-05T10:00:00.1234567Z", AMSTERDAM)
    assert parsed == datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=timezone.utc)
