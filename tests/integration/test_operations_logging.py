"""What reaches the logs as the app configures them (functions/context.py): LOG_LEVEL reaches
every logger of graph/ and sync/ (and msal's), and a SAS connection string's signature never
appears, even when the HTTP stack quotes request URLs against a real Azurite."""
from __future__ import annotations

import base64
import importlib
import logging
import pkgutil
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.data.tables import AccountSasPermissions, ResourceTypes, generate_account_sas

import graph
import sync
from devtools.azurite import ACCOUNT, ACCOUNT_KEY
from functions import context
from sync.settings import SETTING_NAMES

ENCRYPTION_KEY = base64.b64encode(b"operations-logging-test-key-32by").decode()


@pytest.fixture
def restore_logger_levels():
    """context.reset() puts the app's and libraries' levels back; the root's is ours to restore."""
    root = logging.getLogger().level
    yield
    context.reset()
    logging.getLogger().setLevel(root)


def configure(monkeypatch, connection_string: str, log_level: str) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", connection_string)
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:7071")
    monkeypatch.setenv("SECRET_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.setenv("LOG_LEVEL", log_level)
    context.reset()
    context.settings()


def module_loggers(package) -> dict[str, logging.Logger]:
    """The module-level `log` of every module of the package, by module name."""
    found = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        logger = getattr(module, "log", None)
        if isinstance(logger, logging.Logger):
            found[info.name] = logger
    return found


def test_log_level_reaches_every_logger_of_graph_and_sync_and_msal(monkeypatch, storage_connection_string,
                                                                    restore_logger_levels):
    loggers = {**module_loggers(graph), **module_loggers(sync)}
    assert {"graph.client", "graph.auth", "graph.batch", "sync.users"} <= loggers.keys()
    logging.getLogger().setLevel(logging.WARNING)  # the root stays quiet; only LOG_LEVEL may open them

    configure(monkeypatch, storage_connection_string, "DEBUG")
    quiet = [name for name, logger in loggers.items() if not logger.isEnabledFor(logging.DEBUG)]
    assert quiet == []
    assert logging.getLogger("msal").isEnabledFor(logging.DEBUG)

    configure(monkeypatch, storage_connection_string, "ERROR")
    loud = [name for name, logger in loggers.items() if logger.isEnabledFor(logging.WARNING)]
    assert loud == []
    assert not logging.getLogger("msal").isEnabledFor(logging.WARNING)

    configure(monkeypatch, storage_connection_string, "INFO")
    assert all(logger.isEnabledFor(logging.INFO) for logger in loggers.values())
    assert not logging.getLogger("msal").isEnabledFor(logging.INFO)
    assert not logging.getLogger("azure").isEnabledFor(logging.INFO)


def test_reset_gives_the_loggers_their_levels_back(monkeypatch, storage_connection_string, restore_logger_levels):
    context.reset()
    before = {name: logging.getLogger(name).level for name in ("roomsync", "sync", "msal", "urllib3")}
    configure(monkeypatch, storage_connection_string, "DEBUG")
    assert logging.getLogger("roomsync").level == logging.DEBUG
    context.reset()
    assert {name: logging.getLogger(name).level for name in before} == before


def read_only_sas_connection_string(azurite) -> tuple[str, str]:
    sas = generate_account_sas(
        AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY),
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    return (f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{azurite.queue_port}/{ACCOUNT};SharedAccessSignature={sas}"), signature


def test_a_sas_signature_never_reaches_the_logs(monkeypatch, azurite, caplog, restore_logger_levels):
    connection_string, signature = read_only_sas_connection_string(azurite)
    configure(monkeypatch, connection_string, "DEBUG")
    caplog.set_level(logging.DEBUG)  # a host that forwards every record, as the Functions worker may
    log = logging.getLogger("functions.api")

    with pytest.raises(HttpResponseError) as caught:  # the SAS may read and list, not create
        context.table_service().create_table("refusedbysas")
    log.exception("creating a table failed: %s", caught.value)
    assert caught.value.status_code == 403
    try:
        context.queue_service().create_queue("refusedbysas")
    except HttpResponseError as error:
        log.error("creating a queue failed: %s (%r)", error, connection_string, exc_info=True)

    records = "\n".join(caplog.handler.format(record) for record in caplog.records)
    assert "urllib3.connectionpool" in {record.name for record in caplog.records}  # the request lines were logged
    assert "sig=REDACTED" in records
    for secret in (signature, signature.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")):
        assert secret not in records
