"""Every app setting roomsync reads, loaded and checked in one place.

A missing or malformed setting should stop start-up with one line naming it, instead of
surfacing later as a puzzling failure in the middle of a sync run. `load_settings` reads a
mapping (app settings arrive as environment variables, both in Azure and under the local
host) and returns a frozen `Settings`; any problem raises `SettingsError`.

Conventions:
- A blank value counts as unset, so local.settings.json can list optional settings empty.
- Error messages name the setting and what was expected. They never repeat a value that could
  be secret (connection strings, keys) and never repeat URLs (they can carry credentials).
- Relative file paths are resolved against the app root (the folder holding host.json), not the
  working directory, which differs between the Functions host and tools.
- Timer triggers read their schedules as `%SETTING%` expressions, which the Functions host
  resolves from app settings on its own: the defaults below apply to Python code only, so every
  deployment must set the schedule settings explicitly (local.settings.example.json does).
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, TextIO
from urllib.parse import SplitResult, urlsplit

from sync.store.connection import StorageLocation

APP_ROOT = Path(__file__).resolve().parent.parent

STORAGE = "AzureWebJobsStorage"
STORAGE_ACCOUNT_NAME = "AzureWebJobsStorage__accountName"
STORAGE_TABLE_SERVICE_URI = "AzureWebJobsStorage__tableServiceUri"
STORAGE_QUEUE_SERVICE_URI = "AzureWebJobsStorage__queueServiceUri"
STORAGE_CREDENTIAL = "AzureWebJobsStorage__credential"
STORAGE_CLIENT_ID = "AzureWebJobsStorage__clientId"
PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
GRAPH_AUTHORITY_HOST = "GRAPH_AUTHORITY_HOST"
GRAPH_API_BASE = "GRAPH_API_BASE"
GRAPH_CA_BUNDLE = "GRAPH_CA_BUNDLE"
SECRET_ENCRYPTION_KEY = "SECRET_ENCRYPTION_KEY"
SECRET_ENCRYPTION_OLD_KEYS = "SECRET_ENCRYPTION_OLD_KEYS"
USER_SYNC_SCHEDULE = "USER_SYNC_SCHEDULE"
SUBSCRIPTION_RENEWAL_SCHEDULE = "SUBSCRIPTION_RENEWAL_SCHEDULE"
RECURRENCE_SCHEDULE = "RECURRENCE_SCHEDULE"
USER_SYNC_MAX_DEACTIVATION_SHARE = "USER_SYNC_MAX_DEACTIVATION_SHARE"
LOG_LEVEL = "LOG_LEVEL"

SETTING_NAMES: tuple[str, ...] = (
    STORAGE,
    STORAGE_ACCOUNT_NAME,
    STORAGE_TABLE_SERVICE_URI,
    STORAGE_QUEUE_SERVICE_URI,
    STORAGE_CREDENTIAL,
    STORAGE_CLIENT_ID,
    PUBLIC_BASE_URL,
    GRAPH_AUTHORITY_HOST,
    GRAPH_API_BASE,
    GRAPH_CA_BUNDLE,
    SECRET_ENCRYPTION_KEY,
    SECRET_ENCRYPTION_OLD_KEYS,
    USER_SYNC_SCHEDULE,
    SUBSCRIPTION_RENEWAL_SCHEDULE,
    RECURRENCE_SCHEDULE,
    USER_SYNC_MAX_DEACTIVATION_SHARE,
    LOG_LEVEL,
)
"""Every name `load_settings` may read; local.settings.example.json must list each one."""

DEFAULT_GRAPH_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_API_BASE = "https://graph.microsoft.com/v1.0"
DEFAULT_SCHEDULES = {
    USER_SYNC_SCHEDULE: "0 0 2 * * *",
    SUBSCRIPTION_RENEWAL_SCHEDULE: "0 */30 * * * *",
    RECURRENCE_SCHEDULE: "0 30 1 * * *",
}
DEFAULT_MAX_DEACTIVATION_SHARE = 0.2
DEFAULT_LOG_LEVEL = "INFO"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Azurite's documented account and key: public by design, they only open a local emulator.
AZURITE_DEFAULT_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)

# The key published in local.settings.example.json. It is refused unless the app only serves
# this machine, so a copied example file can never protect real client secrets.
DEVELOPMENT_ONLY_ENCRYPTION_KEY = base64.urlsafe_b64decode("DEVELOPMENT-ONLY-roomsync-never-deploy-this=")

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MANAGED_IDENTITY = "managedidentity"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KEY_EXPECTATION = "expected the base64 (or base64url) encoding of a random 32-byte AES-256 key"


class SettingsError(ValueError):
    """A setting is missing or malformed; str() is one line naming it and what was expected."""

    def __init__(self, setting: str, problem: str):
        self.setting = setting
        self.problem = " ".join(problem.split())
        super().__init__(f"{setting}: {self.problem}")


@dataclass(frozen=True)
class Settings:
    """The validated configuration. Secret-bearing fields stay out of repr() and logs."""

    storage: StorageLocation = field(repr=False)
    public_base_url: str
    graph_authority_host: str
    graph_api_base: str
    graph_ca_bundle: str | None
    secret_encryption_key: bytes = field(repr=False)
    user_sync_schedule: str
    subscription_renewal_schedule: str
    recurrence_schedule: str
    user_sync_max_deactivation_share: float
    log_level: str
    # Keys that sealed client secrets before the current one (rotation): they open, never seal.
    secret_encryption_old_keys: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def serves_only_this_machine(self) -> bool:
        """True when Graph reaches the webhooks on a loopback address (local development)."""
        return is_loopback_url(self.public_base_url)


def load_settings(environ: Mapping[str, str] | None = None, *, app_root: Path = APP_ROOT) -> Settings:
    """Read and check every setting; raises SettingsError for the first problem found."""
    if environ is None:
        import os

        environ = os.environ
    storage = _storage(environ)
    public_base_url = _public_base_url(environ)
    return Settings(
        storage=storage,
        public_base_url=public_base_url,
        graph_authority_host=_https_url(environ, GRAPH_AUTHORITY_HOST, DEFAULT_GRAPH_AUTHORITY_HOST),
        graph_api_base=_https_url(environ, GRAPH_API_BASE, DEFAULT_GRAPH_API_BASE),
        graph_ca_bundle=_ca_bundle(environ, app_root),
        secret_encryption_key=_encryption_key(environ, local_only=is_loopback_url(public_base_url)),
        user_sync_schedule=_schedule(environ, USER_SYNC_SCHEDULE),
        subscription_renewal_schedule=_schedule(environ, SUBSCRIPTION_RENEWAL_SCHEDULE),
        recurrence_schedule=_schedule(environ, RECURRENCE_SCHEDULE),
        user_sync_max_deactivation_share=_share(environ, USER_SYNC_MAX_DEACTIVATION_SHARE),
        log_level=_log_level(environ),
        secret_encryption_old_keys=_old_encryption_keys(environ, local_only=is_loopback_url(public_base_url)),
    )


def check_settings_or_exit(environ: Mapping[str, str] | None = None, *, stream: TextIO | None = None) -> Settings:
    """For command-line start-up: on a bad setting print one line to stderr and exit with 2."""
    try:
        return load_settings(environ)
    except SettingsError as error:
        print(f"roomsync: configuration error: {error}", file=stream or sys.stderr)
        raise SystemExit(2) from None


def is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in LOOPBACK_HOSTS


def _value(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name)
    if raw is None:
        return None
    return raw.strip() or None


# -- storage -------------------------------------------------------------------------------

def _storage(environ: Mapping[str, str]) -> StorageLocation:
    """A connection string wins over identity-based settings, as it does for the Functions host.

    The identity follows the host's rules for identity-based connections: `__credential` set to
    `managedidentity` means the app's managed identity, a user-assigned one when `__clientId`
    names it (the system-assigned one otherwise); without `__credential` the developer's or the
    environment's identity is used (DefaultAzureCredential), and `__clientId` only picks the
    managed identity it may fall back to."""
    connection_string = _value(environ, STORAGE)
    if connection_string:
        return StorageLocation(connection_string=_connection_string(connection_string))
    account_name = _value(environ, STORAGE_ACCOUNT_NAME)
    table_uri = _value(environ, STORAGE_TABLE_SERVICE_URI)
    queue_uri = _value(environ, STORAGE_QUEUE_SERVICE_URI)
    if not (account_name or table_uri or queue_uri):
        raise SettingsError(
            STORAGE,
            "not set; expected a storage connection string, or AzureWebJobsStorage__accountName "
            "for an identity-based connection",
        )
    if account_name and not re.fullmatch(r"[a-z0-9]{3,24}", account_name):
        raise SettingsError(STORAGE_ACCOUNT_NAME, "expected a storage account name: 3 to 24 lowercase letters and digits")
    if not account_name:
        for name, uri in ((STORAGE_TABLE_SERVICE_URI, table_uri), (STORAGE_QUEUE_SERVICE_URI, queue_uri)):
            if not uri:
                raise SettingsError(
                    name, "not set; without AzureWebJobsStorage__accountName both service URIs are required"
                )
    credential = _value(environ, STORAGE_CREDENTIAL)
    if credential is not None and credential.lower() != MANAGED_IDENTITY:
        raise SettingsError(STORAGE_CREDENTIAL, "expected 'managedidentity' (or leave it unset to use the "
                            "developer's or the environment's identity)")
    client_id = _value(environ, STORAGE_CLIENT_ID)
    if client_id is not None and not _GUID.fullmatch(client_id):
        raise SettingsError(STORAGE_CLIENT_ID, "expected the client id (a GUID) of the user-assigned managed identity")
    return StorageLocation(
        account_name=account_name,
        table_service_uri=table_uri and _check_https(STORAGE_TABLE_SERVICE_URI, table_uri, what="Table service"),
        queue_service_uri=queue_uri and _check_https(STORAGE_QUEUE_SERVICE_URI, queue_uri, what="Queue service"),
        managed_identity=credential is not None,
        client_id=client_id.lower() if client_id else None,
    )


def _connection_string(raw: str) -> str:
    """Checks the shape of a storage connection string without ever quoting it."""
    if re.fullmatch(r"(?i)usedevelopmentstorage\s*=\s*true;?", raw):
        return AZURITE_DEFAULT_CONNECTION_STRING
    parts: dict[str, str] = {}
    for segment in raw.split(";"):
        if not segment.strip():
            continue
        key, sep, value = segment.partition("=")
        if not sep or not key.strip():
            raise SettingsError(STORAGE, "expected a connection string of Key=Value pairs separated by ';'")
        parts[key.strip().lower()] = value.strip()
    if "usedevelopmentstorage" in parts:
        raise SettingsError(STORAGE, "UseDevelopmentStorage=true must stand alone; otherwise give Azurite's full connection string")
    if "accountkey" in parts:
        if "accountname" not in parts:
            raise SettingsError(STORAGE, "the connection string has an AccountKey but no AccountName")
        if not _is_base64(parts["accountkey"]):
            raise SettingsError(STORAGE, "the connection string's AccountKey is not valid base64")
    elif "sharedaccesssignature" not in parts:
        raise SettingsError(STORAGE, "expected an AccountKey or a SharedAccessSignature in the connection string")
    for endpoint in ("tableendpoint", "queueendpoint"):
        if endpoint in parts and urlsplit(parts[endpoint]).scheme not in ("http", "https"):
            raise SettingsError(STORAGE, f"the connection string's {_endpoint_label(endpoint)} is not an http(s) URL")
        if endpoint not in parts and "accountname" not in parts:
            raise SettingsError(
                STORAGE, f"the connection string needs an AccountName or a {_endpoint_label(endpoint)}"
            )
    return raw


def _endpoint_label(key: str) -> str:
    return {"tableendpoint": "TableEndpoint", "queueendpoint": "QueueEndpoint"}[key]


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(text)


# -- URLs ----------------------------------------------------------------------------------

def _public_base_url(environ: Mapping[str, str]) -> str:
    raw = _value(environ, PUBLIC_BASE_URL)
    if raw is None:
        raise SettingsError(
            PUBLIC_BASE_URL, "not set; expected the https:// address where Microsoft Graph reaches this app's webhooks"
        )
    parts = _split_url(PUBLIC_BASE_URL, raw)
    if parts.scheme == "http" and (parts.hostname or "").lower() in LOOPBACK_HOSTS:
        return raw.rstrip("/")
    if parts.scheme != "https":
        raise SettingsError(PUBLIC_BASE_URL, "expected an https:// URL (http:// only for localhost or 127.0.0.1)")
    return raw.rstrip("/")


def _https_url(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = _value(environ, name) or default
    return _check_https(name, raw, what="URL")


def _check_https(name: str, raw: str, *, what: str) -> str:
    if _split_url(name, raw).scheme != "https":
        raise SettingsError(name, f"expected an https:// {what} address")
    return raw.rstrip("/")


def _split_url(name: str, raw: str) -> SplitResult:
    """Rejects what no base URL should carry: no host, a bad port, credentials, query or fragment."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError:
        raise SettingsError(name, "expected an absolute URL such as https://host[:port][/path]") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, "expected an absolute URL such as https://host[:port][/path]")
    if parts.username is not None or parts.password is not None:
        raise SettingsError(name, "the URL must not contain credentials")
    if parts.query or parts.fragment or raw.rstrip().endswith(("?", "#")):
        raise SettingsError(name, "the URL must not contain a query string or fragment")
    return parts


# -- files and keys -------------------------------------------------------------------------

def _ca_bundle(environ: Mapping[str, str], app_root: Path) -> str | None:
    raw = _value(environ, GRAPH_CA_BUNDLE)
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = app_root / path
    expectation = "expected the path of an existing PEM certificate file (relative paths start at the app root)"
    if not path.is_file():
        raise SettingsError(GRAPH_CA_BUNDLE, f"no such file; {expectation}")
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        raise SettingsError(GRAPH_CA_BUNDLE, f"the file cannot be read; {expectation}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise SettingsError(GRAPH_CA_BUNDLE, f"the file holds no PEM certificate; {expectation}")
    return str(path.resolve())


def _encryption_key(environ: Mapping[str, str], *, local_only: bool) -> bytes:
    raw = _value(environ, SECRET_ENCRYPTION_KEY)
    if raw is None:
        raise SettingsError(SECRET_ENCRYPTION_KEY, f"not set; {_KEY_EXPECTATION}")
    if raw.lower().startswith("@microsoft.keyvault("):
        raise SettingsError(
            SECRET_ENCRYPTION_KEY,
            "is an unresolved Key Vault reference; check that the app's managed identity may read the secret",
        )
    key = decode_key(raw)
    if key is None:
        raise SettingsError(SECRET_ENCRYPTION_KEY, f"not valid base64 or base64url; {_KEY_EXPECTATION}")
    if len(key) != 32:
        raise SettingsError(SECRET_ENCRYPTION_KEY, f"decodes to {len(key)} bytes, not 32; {_KEY_EXPECTATION}")
    if key == DEVELOPMENT_ONLY_ENCRYPTION_KEY and not local_only:
        raise SettingsError(
            SECRET_ENCRYPTION_KEY,
            "is the published development-only key, refused when PUBLIC_BASE_URL is not a loopback address; "
            "generate a new random key",
        )
    return key


def _old_encryption_keys(environ: Mapping[str, str], *, local_only: bool) -> tuple[bytes, ...]:
    """Comma-separated keys that only open (rotation). Entries are named by position, never quoted."""
    raw = _value(environ, SECRET_ENCRYPTION_OLD_KEYS)
    if raw is None:
        return ()
    if raw.lower().startswith("@microsoft.keyvault("):
        raise SettingsError(
            SECRET_ENCRYPTION_OLD_KEYS,
            "is an unresolved Key Vault reference; check that the app's managed identity may read the secret",
        )
    keys: list[bytes] = []
    for position, text in enumerate(raw.split(","), start=1):
        text = text.strip()
        if not text:
            raise SettingsError(SECRET_ENCRYPTION_OLD_KEYS, f"entry {position} is empty; expected comma-separated keys")
        key = decode_key(text)
        if key is None:
            raise SettingsError(SECRET_ENCRYPTION_OLD_KEYS,
                                f"entry {position} is not valid base64 or base64url; {_KEY_EXPECTATION}")
        if len(key) != 32:
            raise SettingsError(SECRET_ENCRYPTION_OLD_KEYS,
                                f"entry {position} decodes to {len(key)} bytes, not 32; {_KEY_EXPECTATION}")
        if key == DEVELOPMENT_ONLY_ENCRYPTION_KEY and not local_only:
            raise SettingsError(SECRET_ENCRYPTION_OLD_KEYS,
                                f"entry {position} is the published development-only key, refused when "
                                "PUBLIC_BASE_URL is not a loopback address")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def decode_key(text: str) -> bytes | None:
    """Decodes base64 or base64url, padded or not; None when it is neither (alphabets may not mix)."""
    if not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", text):
        return None
    if re.search(r"[+/]", text) and re.search(r"[-_]", text):
        return None
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        return None


# -- schedules and numbers --------------------------------------------------------------------

_NCRONTAB_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 6),
)


def _schedule(environ: Mapping[str, str], name: str) -> str:
    raw = _value(environ, name) or DEFAULT_SCHEDULES[name]
    try:
        return check_ncrontab(raw)
    except ValueError as problem:
        raise SettingsError(
            name,
            f"{problem}; expected an NCRONTAB expression in UTC such as '{DEFAULT_SCHEDULES[name]}' "
            "(second minute hour day-of-month month day-of-week)",
        ) from None


def check_ncrontab(expression: str) -> str:
    """Returns the expression with single spaces, or raises ValueError naming the bad field.

    Accepts what the Functions timer trigger accepts in the forms this app uses: six fields
    (with seconds) or five (without); each field is `*`, numbers, ranges `a-b`, lists `a,b`
    and steps `/n`. Month and weekday names are not accepted, to keep schedules uniform.
    """
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"has {len(fields)} fields, not 6 (or 5)")
    specs = _NCRONTAB_FIELDS if len(fields) == 6 else _NCRONTAB_FIELDS[1:]
    for text, (label, low, high) in zip(fields, specs):
        _check_ncrontab_field(text, label, low, high)
    return " ".join(fields)


def _check_ncrontab_field(text: str, label: str, low: int, high: int) -> None:
    if not re.fullmatch(r"[0-9*/,\-]+", text):
        raise ValueError(f"{label} field '{text}' may only contain digits, '*', '/', ',' and '-'")
    for item in text.split(","):
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) >= 1):
            raise ValueError(f"{label} field '{text}' has a step that is not a whole number of at least 1")
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        bounds = (first, last) if dash else (first,)
        if not all(part.isdigit() for part in bounds):
            raise ValueError(f"{label} field '{text}' is not a number, range or '*'")
        numbers = [int(part) for part in bounds]
        if any(n < low or n > high for n in numbers):
            raise ValueError(f"{label} field '{text}' is outside {low}-{high}")
        if numbers[0] > numbers[-1]:
            raise ValueError(f"{label} field '{text}' has a range that runs backwards")


def _share(environ: Mapping[str, str], name: str) -> float:
    raw = _value(environ, name)
    if raw is None:
        return DEFAULT_MAX_DEACTIVATION_SHARE
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not (math.isfinite(share) and 0 < share <= 1):
        raise SettingsError(name, "expected a share greater than 0 and at most 1, such as 0.2 for 20%")
    return share


def _log_level(environ: Mapping[str, str]) -> str:
    raw = (_value(environ, LOG_LEVEL) or DEFAULT_LOG_LEVEL).upper()
    if raw == "WARN":
        raw = "WARNING"
    if raw not in LOG_LEVELS:
        raise SettingsError(LOG_LEVEL, f"expected one of {', '.join(LOG_LEVELS)}")
    return raw
