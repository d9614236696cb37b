"""Time zone names as Outlook accepts them, and Graph's zone-less dateTime strings.

Graph takes IANA names and Windows names ("W. Europe Standard Time") for `start.timeZone`,
`recurrence.range.recurrenceTimeZone` and `Prefer: outlook.timezone`; an unknown name on an event
is a 400 `TimeZoneNotSupportedException`. `dateTime` values carry no offset and 7 fractional
digits; the zone beside them says how to read them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devtools.graph_emulator.errors import GraphError

# Windows zone ids -> a representative IANA zone (the CLDR "001" territory mapping).
_WINDOWS_ZONES = {
    "UTC": "UTC", "Coordinated Universal Time": "UTC", "tzone://Microsoft/Utc": "UTC",
    "Dateline Standard Time": "Etc/GMT+12", "UTC-11": "Etc/GMT+11", "UTC-02": "Etc/GMT+2",
    "UTC+12": "Etc/GMT-12", "UTC+13": "Etc/GMT-13",
    "Hawaiian Standard Time": "Pacific/Honolulu", "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles", "Pacific Standard Time (Mexico)": "America/Tijuana",
    "US Mountain Standard Time": "America/Phoenix", "Mountain Standard Time": "America/Denver",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Central America Standard Time": "America/Guatemala", "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City", "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota", "Eastern Standard Time": "America/New_York",
    "US Eastern Standard Time": "America/Indiana/Indianapolis", "Venezuela Standard Time": "America/Caracas",
    "Atlantic Standard Time": "America/Halifax", "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago", "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo", "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "SA Eastern Standard Time": "America/Cayenne", "Greenland Standard Time": "America/Nuuk",
    "Montevideo Standard Time": "America/Montevideo", "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde", "Morocco Standard Time": "Africa/Casablanca",
    "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin", "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris", "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos", "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest", "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo", "E. Europe Standard Time": "Europe/Chisinau",
    "South Africa Standard Time": "Africa/Johannesburg", "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem", "Turkey Standard Time": "Europe/Istanbul",
    "Arabic Standard Time": "Asia/Baghdad", "Arab Standard Time": "Asia/Riyadh",
    "Russian Standard Time": "Europe/Moscow", "E. Africa Standard Time": "Africa/Nairobi",
    "Iran Standard Time": "Asia/Tehran", "Arabian Standard Time": "Asia/Dubai",
    "Afghanistan Standard Time": "Asia/Kabul", "West Asia Standard Time": "Asia/Tashkent",
    "Pakistan Standard Time": "Asia/Karachi", "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo", "Nepal Standard Time": "Asia/Kathmandu",
    "Central Asia Standard Time": "Asia/Almaty", "Bangladesh Standard Time": "Asia/Dhaka",
    "Myanmar Standard Time": "Asia/Yangon", "SE Asia Standard Time": "Asia/Bangkok",
    "North Asia Standard Time": "Asia/Krasnoyarsk", "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore", "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei", "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul", "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin", "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney", "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok", "New Zealand Standard Time": "Pacific/Auckland",
    "Fiji Standard Time": "Pacific/Fiji", "Tonga Standard Time": "Pacific/Tongatapu",
}
_BY_LOWER = {name.lower(): iana for name, iana in _WINDOWS_ZONES.items()}


@lru_cache(maxsize=512)
def _lookup(name: str) -> ZoneInfo | None:
    key = name.strip()
    iana = _BY_LOWER.get(key.lower(), key)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def find_zone(name: str | None) -> ZoneInfo | None:
    """The zone for a Windows or IANA name, or None when Outlook would not know it."""
    if not name or not name.strip():
        return None
    return _lookup(name)


def require_zone(name: str | None) -> ZoneInfo:
    """The zone for an event's timeZone field; Graph rejects unknown names with a 400."""
    zone = find_zone(name)
    if zone is None:
        raise GraphError(400, "TimeZoneNotSupportedException",
                         f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.")
    return zone


def normalize_graph_datetime(text: str) -> str:
    """A Graph dateTime in the form `datetime.fromisoformat` reads: `Z` as +00:00 and the
    fraction cut or padded to 6 digits (Graph writes 7)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, tail = value.partition(".")
    if dot:
        count = len(tail) - len(tail.lstrip("0123456789"))  # the fraction only, not an offset's digits
        value = head + "." + tail[:count][:6].ljust(6, "0") + tail[count:]
    return value


def parse_local(text: str, zone: ZoneInfo) -> datetime:
    """Reads a Graph dateTime in `zone` (an explicit offset or Z in the text wins) as UTC."""
    parsed = datetime.fromisoformat(normalize_graph_datetime(text))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(timezone.utc)


def format_local(moment: datetime, zone: ZoneInfo) -> str:
    """Graph's zone-less form: `2026-01-01T10:00:00.0000000` (7 fractional digits)."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0"


def format_offset(moment: datetime) -> str:
    """DateTimeOffset values such as `originalStart`: `2026-01-05T09:00:00Z`."""
    utc = moment.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"
