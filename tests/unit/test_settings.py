"""sync.settings: every setting is read, defaulted and refused as documented."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync import settings as s
from sync.settings import SettingsError, check_settings_or_exit, check_ncrontab, load_settings
from sync.store.connection import table_service

ROOT = Path(__file__).resolve().parents[2]
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ACCOUNT_KEY = base64.b64encode(b"k" * 64).decode()
CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName=devacct;AccountKey={ACCOUNT_KEY};"
    "TableEndpoint=http://127.0.0.1:1/devacct;QueueEndpoint=http://127.0.0.1:2/devacct;"
)


def random_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def env() -> dict[str, str]:
    """The smallest valid configuration: only the required settings."""
    return {
        "AzureWebJobsStorage": CONNECTION_STRING,
        "PUBLIC_BASE_URL": "https://sync.example.com",
        "SECRET_ENCRYPTION_KEY": random_key(),
    }


def error_for(environ, **kwargs) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return caught.value


# -- defaults ------------------------------------------------------------------------------

def test_minimal_configuration_gets_documented_defaults(env):
    loaded = load_settings(env)
    assert loaded.graph_authority_host == "https://login.microsoftonline.com"
    assert loaded.graph_api_base == "https://graph.microsoft.com/v1.0"
    assert loaded.graph_ca_bundle is None
    assert loaded.user_sync_schedule == "0 0 2 * * *"
    assert loaded.subscription_renewal_schedule == "0 */30 * * * *"
    assert loaded.recurrence_schedule == "0 30 1 * * *"
    assert loaded.user_sync_max_deactivation_share == 0.2
    assert loaded.log_level == "INFO"


def test_blank_values_count_as_unset(env):
    env.update({"GRAPH_API_BASE": "  ", "LOG_LEVEL": "", "USER_SYNC_SCHEDULE": ""})
    loaded = load_settings(env)
    assert loaded.graph_api_base == s.DEFAULT_GRAPH_API_BASE
    assert loaded.log_level == "INFO"
    assert loaded.user_sync_schedule == "0 0 2 * * *"


def test_reads_os_environ_by_default(env, monkeypatch):
    for name in s.SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_settings_are_frozen(env):
    loaded = load_settings(env)
    with pytest.raises(AttributeError):
        loaded.log_level = "DEBUG"  # type: ignore[misc]


def test_repr_hides_the_key_and_the_connection_string(env):
    text = repr(load_settings(env))
    assert ACCOUNT_KEY not in text and "AccountKey" not in text
    assert env["SECRET_ENCRYPTION_KEY"] not in text
    assert "secret_encryption_key" not in text


# -- AzureWebJobsStorage --------------------------------------------------------------------

def test_connection_string_is_kept_as_given(env):
    assert load_settings(env).storage.connection_string == CONNECTION_STRING


def test_use_development_storage_means_azurite_on_its_default_ports(env):
    env["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    storage = load_settings(env).storage
    assert storage.connection_string == s.AZURITE_DEFAULT_CONNECTION_STRING
    assert table_service(storage).url.startswith("http://127.0.0.1:10002/devstoreaccount1")


def test_missing_storage_names_both_forms(env):
    del env["AzureWebJobsStorage"]
    error = error_for(env)
    assert error.setting == "AzureWebJobsStorage"
    assert "AzureWebJobsStorage__accountName" in str(error)


@pytest.mark.parametrize(
    "connection_string, expected",
    [
        ("just-some-text", "Key=Value"),
        ("AccountName=devacct;AccountKey=not base64!!", "AccountKey is not valid base64"),
        (f"AccountKey={ACCOUNT_KEY}", "no AccountName"),
        ("AccountName=devacct;DefaultEndpointsProtocol=https", "AccountKey or a SharedAccessSignature"),
        ("SharedAccessSignature=sv=2020&sig=abc;TableEndpoint=http://127.0.0.1:1/a", "QueueEndpoint"),
        (f"AccountName=a;AccountKey={ACCOUNT_KEY};TableEndpoint=ftp://x/a", "TableEndpoint is not an http(s) URL"),
        ("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://x", "must stand alone"),
    ],
)
def test_malformed_connection_string_is_named_without_quoting_it(env, connection_string, expected):
    env["AzureWebJobsStorage"] = connection_string
    error = error_for(env)
    assert error.setting == "AzureWebJobsStorage"
    assert expected in str(error)
    assert connection_string not in str(error)
    assert ACCOUNT_KEY not in str(error) and "sig=abc" not in str(error)


def test_identity_based_storage_by_account_name(env):
    del env["AzureWebJobsStorage"]
    env["AzureWebJobsStorage__accountName"] = "roomsyncprod01"
    storage = load_settings(env).storage
    assert storage.uses_identity
    assert storage.table_endpoint() == "https://roomsyncprod01.table.core.windows.net"
    assert storage.queue_endpoint() == "https://roomsyncprod01.queue.core.windows.net"


def test_identity_based_storage_by_service_uris(env):
    env["AzureWebJobsStorage"] = ""
    env["AzureWebJobsStorage__tableServiceUri"] = "https://acct.table.core.usgovcloudapi.net/"
    env["AzureWebJobsStorage__queueServiceUri"] = "https://acct.queue.core.usgovcloudapi.net"
    storage = load_settings(env).storage
    assert storage.table_endpoint() == "https://acct.table.core.usgovcloudapi.net"
    assert storage.queue_endpoint() == "https://acct.queue.core.usgovcloudapi.net"


def test_connection_string_wins_over_identity_settings(env):
    env["AzureWebJobsStorage__accountName"] = "otheraccount"
    storage = load_settings(env).storage
    assert storage.connection_string == CONNECTION_STRING and storage.account_name is None


@pytest.mark.parametrize("name", ["Has-Upper", "ab", "a" * 25, "under_score"])
def test_malformed_account_name(env, name):
    del env["AzureWebJobsStorage"]
    env["AzureWebJobsStorage__accountName"] = name
    assert error_for(env).setting == "AzureWebJobsStorage__accountName"


def test_service_uris_come_in_pairs(env):
    del env["AzureWebJobsStorage"]
    env["AzureWebJobsStorage__tableServiceUri"] = "https://acct.table.core.windows.net"
    assert error_for(env).setting == "AzureWebJobsStorage__queueServiceUri"


def test_service_uri_must_be_https(env):
    del env["AzureWebJobsStorage"]
    env["AzureWebJobsStorage__tableServiceUri"] = "http://acct.table.core.windows.net"
    env["AzureWebJobsStorage__queueServiceUri"] = "https://acct.queue.core.windows.net"
    error = error_for(env)
    assert error.setting == "AzureWebJobsStorage__tableServiceUri" and "https" in str(error)


# -- PUBLIC_BASE_URL ------------------------------------------------------------------------

def test_public_base_url_is_required(env):
    del env["PUBLIC_BASE_URL"]
    error = error_for(env)
    assert error.setting == "PUBLIC_BASE_URL" and "not set" in str(error)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://sync.example.com/", "https://sync.example.com"),
        ("https://sync.example.com:8443/roomsync/", "https://sync.example.com:8443/roomsync"),
        ("http://localhost:7071", "http://localhost:7071"),
        ("http://127.0.0.1:7071/", "http://127.0.0.1:7071"),
        ("http://[::1]:7071", "http://[::1]:7071"),
    ],
)
def test_public_base_url_accepted(env, url, expected):
    env["PUBLIC_BASE_URL"] = url
    assert load_settings(env).public_base_url == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://sync.example.com", "http:// only for localhost"),
        ("ftp://sync.example.com", "absolute URL"),
        ("sync.example.com", "absolute URL"),
        ("https://", "absolute URL"),
        ("https://sync.example.com:99999", "absolute URL"),
        ("https://user:hunter2@sync.example.com", "credentials"),
        ("https://sync.example.com/?code=abc", "query string"),
        ("https://sync.example.com/#top", "fragment"),
    ],
)
def test_public_base_url_refused(env, url, expected):
    env["PUBLIC_BASE_URL"] = url
    error = error_for(env)
    assert error.setting == "PUBLIC_BASE_URL" and expected in str(error)
    assert "hunter2" not in str(error)


# -- Graph endpoints and CA bundle ----------------------------------------------------------

@pytest.mark.parametrize("name", ["GRAPH_AUTHORITY_HOST", "GRAPH_API_BASE"])
def test_graph_urls_accept_other_clouds_and_trim_the_slash(env, name):
    env[name] = "https://graph.microsoft.us/v1.0/" if name == "GRAPH_API_BASE" else "https://login.microsoftonline.us/"
    loaded = load_settings(env)
    value = loaded.graph_api_base if name == "GRAPH_API_BASE" else loaded.graph_authority_host
    assert not value.endswith("/") and value.startswith("https://")


@pytest.mark.parametrize("name", ["GRAPH_AUTHORITY_HOST", "GRAPH_API_BASE"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "http://graph.example.com", "not a url"])
def test_graph_urls_must_be_https(env, name, url):
    env[name] = url
    assert error_for(env).setting == name


def test_ca_bundle_relative_to_app_root(env, tmp_path):
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "ca.pem").write_text(PEM)
    env["GRAPH_CA_BUNDLE"] = ".local/ca.pem"
    loaded = load_settings(env, app_root=tmp_path)
    assert loaded.graph_ca_bundle == str((tmp_path / ".local" / "ca.pem").resolve())


def test_ca_bundle_absolute_path(env, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text(PEM)
    env["GRAPH_CA_BUNDLE"] = str(bundle)
    assert load_settings(env).graph_ca_bundle == str(bundle.resolve())


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda root: "missing.pem", "no such file"),
        (lambda root: (root / "dir").mkdir() or "dir", "no such file"),
        (lambda root: (root / "x.pem").write_text("not a certificate") and "x.pem", "no PEM certificate"),
    ],
)
def test_ca_bundle_refused(env, tmp_path, make, expected):
    env["GRAPH_CA_BUNDLE"] = make(tmp_path)
    error = error_for(env, app_root=tmp_path)
    assert error.setting == "GRAPH_CA_BUNDLE" and expected in str(error)


# -- SECRET_ENCRYPTION_KEY ------------------------------------------------------------------

def test_key_is_required(env):
    del env["SECRET_ENCRYPTION_KEY"]
    error = error_for(env)
    assert error.setting == "SECRET_ENCRYPTION_KEY" and "32-byte" in str(error)


def test_key_in_standard_base64(env):
    raw = os.urandom(32)
    env["SECRET_ENCRYPTION_KEY"] = base64.b64encode(raw).decode()
    assert load_settings(env).secret_encryption_key == raw


def test_key_in_unpadded_base64url(env):
    raw = bytes(range(224, 256))  # encodes with '-' and '_'
    encoded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded
    env["SECRET_ENCRYPTION_KEY"] = encoded
    assert load_settings(env).secret_encryption_key == raw


MALFORMED_KEYS = [
    base64.b64encode(b"s3cr3t-sixteen-b").decode(),  # 16 bytes
    base64.b64encode(os.urandom(33)).decode(),
    "correct horse battery staple, definitely not base64",
    "QUJD+REVG_" + "A" * 33 + "=",  # 32 bytes, but mixes the two alphabets
    "A" * 43 + "===",
    "A" * 41,  # a length no base64 text can have
]


@pytest.mark.parametrize("value", MALFORMED_KEYS)
def test_malformed_key_is_refused_without_echoing_it(env, value):
    env["SECRET_ENCRYPTION_KEY"] = value
    error = error_for(env)
    assert error.setting == "SECRET_ENCRYPTION_KEY"
    text = str(error) + repr(error)
    assert value not in text
    assert value[:12] not in text


def test_wrong_length_key_says_how_long_it_is(env):
    env["SECRET_ENCRYPTION_KEY"] = base64.b64encode(os.urandom(16)).decode()
    assert "16 bytes, not 32" in str(error_for(env))


def test_unresolved_key_vault_reference_is_explained(env):
    env["SECRET_ENCRYPTION_KEY"] = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/key/)"
    error = error_for(env)
    assert "Key Vault" in str(error) and "kv.vault.azure.net" not in str(error)


def test_development_key_only_serves_this_machine(env):
    env["SECRET_ENCRYPTION_KEY"] = "DEVELOPMENT-ONLY-roomsync-never-deploy-this="
    assert "development-only" in str(error_for(env))
    env["PUBLIC_BASE_URL"] = "http://127.0.0.1:7071"
    assert load_settings(env).secret_encryption_key == s.DEVELOPMENT_ONLY_ENCRYPTION_KEY


# -- schedules ------------------------------------------------------------------------------

SCHEDULES = ["USER_SYNC_SCHEDULE", "SUBSCRIPTION_RENEWAL_SCHEDULE", "RECURRENCE_SCHEDULE"]


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize(
    "expression, stored",
    [
        ("0 15 3 * * 1-5", "0 15 3 * * 1-5"),
        ("  0  */5   *  * * *  ", "0 */5 * * * *"),
        ("30 9 1,15 */2 0", "30 9 1,15 */2 0"),
        ("0 0-30/10 8-18 1-31 1-12 0-6", "0 0-30/10 8-18 1-31 1-12 0-6"),
        ("5/15 * * * * *", "5/15 * * * * *"),
    ],
)
def test_schedule_accepted(env, name, expression, stored):
    env[name] = expression
    assert getattr(load_settings(env), name.lower()) == stored


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize(
    "expression, expected",
    [
        ("0 0 2 * *  * *", "7 fields"),
        ("0 2 * *", "4 fields"),
        ("0 0 2 * * MON", "may only contain"),
        ("00:30:00", "1 fields"),
        ("60 0 2 * * *", "second field '60' is outside 0-59"),
        ("0 0 24 * * *", "hour field '24' is outside 0-23"),
        ("0 0 2 0 * *", "day-of-month field '0' is outside 1-31"),
        ("0 0 2 * 13 *", "month field '13' is outside 1-12"),
        ("0 0 2 * * 7", "day-of-week field '7' is outside 0-6"),
        ("0 0 18-8 * * *", "runs backwards"),
        ("0 */0 * * * *", "step"),
        ("0 */ * * * *", "step"),
        ("0 1,,2 * * * *", "not a number"),
        ("0 1-2-3 * * * *", "not a number"),
        ("61 2 * * *", "minute field '61'"),
    ],
)
def test_schedule_refused(env, name, expression, expected):
    env[name] = expression
    error = error_for(env)
    assert error.setting == name
    assert expected in str(error) and "NCRONTAB" in str(error)


FIELD_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@st.composite
def ncrontab_field(draw, low, high):
    kind = draw(st.sampled_from(["star", "number", "range", "list"]))
    number = st.integers(low, high)
    if kind == "star":
        text = "*"
    elif kind == "number":
        text = str(draw(number))
    elif kind == "range":
        a, b = sorted((draw(number), draw(number)))
        text = f"{a}-{b}"
    else:
        text = ",".join(str(n) for n in draw(st.lists(number, min_size=1, max_size=4)))
    if kind in ("star", "range") and draw(st.booleans()):
        text += f"/{draw(st.integers(1, high))}"
    return text


@given(st.tuples(*(ncrontab_field(low, high) for low, high in FIELD_RANGES)))
def test_any_well_formed_six_field_expression_is_accepted(fields):
    assert check_ncrontab(" ".join(fields)) == " ".join(fields)


@given(st.sampled_from(range(6)), st.data())
def test_any_out_of_range_number_is_refused(position, data):
    low, high = FIELD_RANGES[position]
    bad = data.draw(st.one_of(st.integers(high + 1, high + 100), st.integers(0, low - 1) if low else st.nothing()))
    fields = ["*"] * 6
    fields[position] = str(bad)
    with pytest.raises(ValueError, match="outside"):
        check_ncrontab(" ".join(fields))


# -- numbers and log level ------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("0.5", 0.5), ("1", 1.0), (" 0.05 ", 0.05)])
def test_deactivation_share_accepted(env, value, expected):
    env["USER_SYNC_MAX_DEACTIVATION_SHARE"] = value
    assert load_settings(env).user_sync_max_deactivation_share == expected


@pytest.mark.parametrize("value", ["0", "-0.1", "1.01", "20%", "abc", "nan", "inf"])
def test_deactivation_share_refused(env, value):
    env["USER_SYNC_MAX_DEACTIVATION_SHARE"] = value
    error = error_for(env)
    assert error.setting == "USER_SYNC_MAX_DEACTIVATION_SHARE" and "at most 1" in str(error)


@pytest.mark.parametrize("value, expected", [("debug", "DEBUG"), ("Warning", "WARNING"), ("WARN", "WARNING"), ("ERROR", "ERROR")])
def test_log_level_accepted(env, value, expected):
    env["LOG_LEVEL"] = value
    assert load_settings(env).log_level == expected


@pytest.mark.parametrize("value", ["verbose", "TRACE", "10"])
def test_log_level_refused(env, value):
    env["LOG_LEVEL"] = value
    error = error_for(env)
    assert error.setting == "LOG_LEVEL" and "INFO" in str(error)


# -- start-up ------------------------------------------------------------------------------

def test_check_settings_or_exit_returns_settings_quietly(env, capsys):
    assert check_settings_or_exit(env).public_base_url == "https://sync.example.com"
    assert capsys.readouterr() == ("", "")


def test_check_settings_or_exit_prints_one_line_and_exits_2(env, capsys):
    env["SECRET_ENCRYPTION_KEY"] = "tooshort"
    with pytest.raises(SystemExit) as exited:
        check_settings_or_exit(env)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("roomsync: configuration error: SECRET_ENCRYPTION_KEY: ")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "tooshort" not in err


# -- the settings inventory -----------------------------------------------------------------

class RecordingEnv(dict):
    """A mapping that remembers every name the loader asks for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def test_setting_names_list_exactly_what_the_loader_reads(env):
    with_connection_string = RecordingEnv(env)
    load_settings(with_connection_string)
    identity = RecordingEnv(env, AzureWebJobsStorage="")
    identity.update(
        AzureWebJobsStorage__tableServiceUri="https://a.table.core.windows.net",
        AzureWebJobsStorage__queueServiceUri="https://a.queue.core.windows.net",
    )
    load_settings(identity)
    assert with_connection_string.asked | identity.asked == set(s.SETTING_NAMES)


def test_example_settings_file_loads_once_the_emulator_ca_exists(tmp_path):
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    ca_path = tmp_path / values["GRAPH_CA_BUNDLE"]
    ca_path.parent.mkdir(parents=True)
    ca_path.write_text(PEM)
    loaded = load_settings(values, app_root=tmp_path)
    assert loaded.storage.connection_string == s.AZURITE_DEFAULT_CONNECTION_STRING
    assert loaded.secret_encryption_key == s.DEVELOPMENT_ONLY_ENCRYPTION_KEY
    assert loaded.graph_api_base.startswith("https://127.0.0.1")
    assert loaded.serves_only_this_machine


# -- key rotation ---------------------------------------------------------------------------

def test_old_encryption_keys_are_optional_and_comma_separated(env):
    assert load_settings(env).secret_encryption_old_keys == ()
    first, second = os.urandom(32), os.urandom(32)
    env["SECRET_ENCRYPTION_OLD_KEYS"] = (f" {base64.b64encode(first).decode()} ,"
                                         f"{base64.urlsafe_b64encode(second).decode().rstrip('=')},"
                                         f"{base64.b64encode(first).decode()}")
    assert load_settings(env).secret_encryption_old_keys == (first, second)
    assert first.hex() not in repr(load_settings(env))


@pytest.mark.parametrize("entries, expected", [
    ("{good},", "entry 2 is empty"),
    ("{good},not base64!", "entry 2 is not valid base64"),
    ("dG9vc2hvcnQ=", "entry 1 decodes to 8 bytes, not 32"),
    ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/old)", "unresolved Key Vault reference"),
])
def test_malformed_old_keys_are_named_by_position_never_quoted(env, entries, expected):
    good = random_key()
    env["SECRET_ENCRYPTION_OLD_KEYS"] = entries.format(good=good)
    error = error_for(env)
    assert error.setting == "SECRET_ENCRYPTION_OLD_KEYS" and expected in str(error)
    assert good not in str(error) and "dG9vc2hvcnQ" not in str(error)


def test_the_development_key_is_no_old_key_outside_this_machine(env):
    env["SECRET_ENCRYPTION_OLD_KEYS"] = "DEVELOPMENT-ONLY-roomsync-never-deploy-this="
    assert "development-only" in str(error_for(env))
    env["PUBLIC_BASE_URL"] = "http://127.0.0.1:7071"
    assert load_settings(env).secret_encryption_old_keys == (s.DEVELOPMENT_ONLY_ENCRYPTION_KEY,)


# -- identity-based storage with a user-assigned managed identity ---------------------------

USER_ASSIGNED = "6f1c2f8e-8a4b-4c1e-9d51-0a7e4b2c9f31"


def test_managed_identity_with_a_client_id_names_the_user_assigned_identity(env):
    del env["AzureWebJobsStorage"]
    env.update({"AzureWebJobsStorage__accountName": "roomsyncprod01",
                "AzureWebJobsStorage__credential": "managedidentity",
                "AzureWebJobsStorage__clientId": USER_ASSIGNED.upper()})
    storage = load_settings(env).storage
    assert storage.managed_identity and storage.client_id == USER_ASSIGNED


def test_without_credential_the_client_id_is_kept_for_default_credential(env):
    del env["AzureWebJobsStorage"]
    env.update({"AzureWebJobsStorage__accountName": "roomsyncprod01", "AzureWebJobsStorage__clientId": USER_ASSIGNED})
    storage = load_settings(env).storage
    assert not storage.managed_identity and storage.client_id == USER_ASSIGNED


@pytest.mark.parametrize("name, value, expected", [
    ("AzureWebJobsStorage__credential", "clientsecret", "expected 'managedidentity'"),
    ("AzureWebJobsStorage__clientId", "my-identity", "client id (a GUID)"),
])
def test_malformed_identity_settings(env, name, value, expected):
    del env["AzureWebJobsStorage"]
    env.update({"AzureWebJobsStorage__accountName": "roomsyncprod01", name: value})
    error = error_for(env)
    assert error.setting == name and expected in str(error)


def test_a_connection_string_ignores_the_identity_settings(env):
    env.update({"AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": USER_ASSIGNED})
    storage = load_settings(env).storage
    assert storage.connection_string and not storage.uses_identity
