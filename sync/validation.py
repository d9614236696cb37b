"""Checking what admins send to the REST API, with answers that name the field at fault.

Status codes: 400 when the request is malformed (not a JSON object, a required field missing,
a field of the wrong type, an unknown field or query parameter); 422 when it is well formed
but a value breaks a rule (not a GUID, not a domain name, an expiry in the past, a share
outside (0, 1]). Values that could be secret are never repeated in a message.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any, Mapping

from sync.model import UNKNOWN_ORGANIZER_CHOICES

MAX_DOMAINS = 50
MAX_SECRET_LENGTH = 1024
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TOP_LEVEL = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
UNSET: Any = object()


class Problem(Exception):
    """A request the API refuses; `as_body()` is the JSON error answer."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = dict(details or {})

    def as_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        error.update(self.details)
        return {"error": error}


def malformed(field: str | None, message: str, code: str = "invalid_request") -> Problem:
    return Problem(400, code, message, field=field)


def invalid(field: str, message: str) -> Problem:
    return Problem(422, "invalid_field", f"{field}: {message}", field=field)


# ---- building blocks ----------------------------------------------------------------------------

def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body or not body.strip():
        raise malformed(None, "the request body is empty; send a JSON object", "invalid_json")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise malformed(None, "the request body is not valid JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise malformed(None, "the request body must be a JSON object", "invalid_json")
    return data


def reject_unknown(data: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        name = prefix + unknown[0]
        raise Problem(400, "unknown_field", f"{name}: unknown field; allowed: {', '.join(sorted(allowed))}",
                      field=name)


def require_string(data: Mapping[str, Any], name: str) -> str:
    if name not in data or data[name] is None:
        raise Problem(400, "missing_field", f"{name}: required", field=name)
    value = data[name]
    if not isinstance(value, str):
        raise malformed(name, f"{name}: must be a string")
    return value


def guid(name: str, value: str) -> str:
    text = value.strip()
    if not _GUID.fullmatch(text):
        raise invalid(name, "must be a GUID such as 00000000-0000-0000-0000-000000000000 "
                            "(find it on the app registration's Overview page)")
    return str(uuid.UUID(text))


def domain(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise malformed(name, f"{name}: must be a string")
    text = value.strip().lower().rstrip(".")
    labels = text.split(".")
    if (not text or len(text) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels)
            or not _TOP_LEVEL.fullmatch(labels[-1])):
        raise invalid(name, "must be a domain name such as contoso.com (no scheme, @ or path)")
    return text


def domains(data: Mapping[str, Any]) -> tuple[str, ...]:
    """`domains` (a list) or `domain` (one), lowercase and without duplicates."""
    if "domains" in data and "domain" in data:
        raise malformed("domains", "send either domains (a list) or domain (one), not both")
    if data.get("domain") is not None:
        return (domain("domain", data["domain"]),)
    if data.get("domains") is None:
        raise Problem(400, "missing_field", "domains: required (the email domains of the people to sync)",
                      field="domains")
    values = data["domains"]
    if not isinstance(values, list):
        raise malformed("domains", "domains: must be a list of domain names")
    if not values:
        raise invalid("domains", "must name at least one domain")
    if len(values) > MAX_DOMAINS:
        raise invalid("domains", f"at most {MAX_DOMAINS} domains")
    return tuple(dict.fromkeys(domain(f"domains[{n}]", v) for n, v in enumerate(values)))


def client_secret(data: Mapping[str, Any], name: str = "client_secret") -> str:
    value = require_string(data, name)
    if not value:
        raise invalid(name, "must not be empty")
    if value != value.strip():
        raise invalid(name, "starts or ends with whitespace; paste the secret's Value exactly")
    if len(value) > MAX_SECRET_LENGTH or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise invalid(name, "is not a client secret value (too long or contains control characters)")
    return value


def expiry(data: Mapping[str, Any], name: str, now: datetime) -> datetime | None:
    """An ISO 8601 date (read as 00:00 UTC that day) or date-time with an offset; null allowed."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(name, f"{name}: must be an ISO 8601 date or date-time string")
    text = value.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(0), tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(name, "must be an ISO 8601 date (2026-05-31) or date-time with offset") from None
    if moment.tzinfo is None:
        raise invalid(name, "a date-time needs a UTC offset, e.g. 2026-05-31T00:00:00Z")
    moment = moment.astimezone(timezone.utc)
    if moment <= now:
        raise invalid(name, "is in the past: that secret no longer works; create a new one")
    return moment


def share(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise malformed(name, f"{name}: must be a number")
    if not 0 < value <= 1:
        raise invalid(name, "must be greater than 0 and at most 1 (0.2 means 20%)")
    return float(value)


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(name, f"{name}: must be a string, one of {', '.join(allowed)}")
    if value not in allowed:
        raise invalid(name, f"must be one of {', '.join(allowed)}")
    return value


def boolean(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise malformed(name, f"{name}: must be true or false")


# Each option's parser; null takes the default (for max_deactivation_share: the app setting).
_OPTION_PARSERS = {
    "max_deactivation_share": share,
    "unknown_organizer": lambda name, value: choice(name, value, UNKNOWN_ORGANIZER_CHOICES),
    "recover_subject": boolean,
    "decline_leaver_meetings": boolean,
}
OPTION_FIELDS = frozenset(_OPTION_PARSERS)


def options(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `options` object (None when absent); only the keys sent."""
    value = data.get("options")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise malformed("options", "options: must be an object")
    reject_unknown(value, OPTION_FIELDS, prefix="options.")
    return {key: _OPTION_PARSERS[key](f"options.{key}", raw) for key, raw in value.items()}


# ---- request bodies -----------------------------------------------------------------------------

@dataclass(frozen=True)
class NewIntegration:
    domains: tuple[str, ...]
    tenant_id: str
    client_id: str
    client_secret: str
    secret_expires_at: datetime | None
    options: dict[str, Any]

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return (f"NewIntegration(domains={self.domains!r}, tenant_id={self.tenant_id!r}, "
                f"client_id={self.client_id!r}, client_secret=<hidden>)")


NEW_INTEGRATION_FIELDS = frozenset({"domain", "domains", "tenant_id", "client_id", "client_secret",
                                    "client_secret_expires_at", "options"})


def new_integration(data: Mapping[str, Any], now: datetime) -> NewIntegration:
    reject_unknown(data, NEW_INTEGRATION_FIELDS)
    found_domains = domains(data)
    tenant = guid("tenant_id", require_string(data, "tenant_id"))
    client = guid("client_id", require_string(data, "client_id"))
    secret = client_secret(data)
    return NewIntegration(domains=found_domains, tenant_id=tenant, client_id=client, client_secret=secret,
                          secret_expires_at=expiry(data, "client_secret_expires_at", now),
                          options=options(data) or {})


@dataclass(frozen=True)
class IntegrationPatch:
    client_secret: str | None
    secret_expires_at: Any  # UNSET, None or a datetime
    options: dict[str, Any] | None

    def __repr__(self) -> str:
        return f"IntegrationPatch(client_secret={'<hidden>' if self.client_secret else None}, options={self.options!r})"


PATCH_FIELDS = frozenset({"client_secret", "client_secret_expires_at", "options"})


def integration_patch(data: Mapping[str, Any], now: datetime) -> IntegrationPatch:
    reject_unknown(data, PATCH_FIELDS)
    if not data:
        raise malformed(None, f"nothing to change; send any of {', '.join(sorted(PATCH_FIELDS))}", "empty_patch")
    secret = client_secret(data) if "client_secret" in data else None
    expires = expiry(data, "client_secret_expires_at", now) if "client_secret_expires_at" in data else UNSET
    return IntegrationPatch(client_secret=secret, secret_expires_at=expires, options=options(data))


# ---- query parameters ----------------------------------------------------------------------------

def flag(name: str, raw: str | None, default: bool | None = False) -> bool | None:
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise malformed(name, f"{name}: must be true or false")


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not raw.strip().isdigit():
        raise malformed("page_size", f"page_size: must be a whole number from 1 to {MAX_PAGE_SIZE}")
    size = int(raw)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid("page_size", f"must be from 1 to {MAX_PAGE_SIZE}")
    return size


def reject_unknown_params(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(params) - allowed - {"code"})  # `code` carries the function key
    if unknown:
        raise Problem(400, "unknown_parameter",
                      f"{unknown[0]}: unknown query parameter; allowed: {', '.join(sorted(allowed))}",
                      field=unknown[0])


def integration_id(value: str | None) -> str:
    """A route's integration id: anything that is not one of our ids cannot exist (404)."""
    if not value or not _GUID.fullmatch(value):
        raise Problem(404, "not_found", "no such integration")
    return str(uuid.UUID(value))
