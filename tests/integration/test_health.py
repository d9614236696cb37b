"""GET /api/health through the registered function, against Azurite and against nothing."""
from __future__ import annotations

import base64
import importlib
import json
import sys
import time

import azure.functions as func
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from devtools.ports import free_port
from functions import context
from sync.health import check_health
from sync.settings import SETTING_NAMES, SettingsError
from sync.version import __version__

DEAD_ACCOUNT_KEY = base64.b64encode(b"nobody-listens-here" * 3).decode()


def connection_string_for_closed_port() -> str:
    port = free_port()  # released again at once: nothing listens there
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEAD_ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


@pytest.fixture
def use_storage(monkeypatch):
    """Points the app at the given storage, with the other settings valid and nothing else set."""
    def configure(connection_string: str) -> None:
        for name in SETTING_NAMES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AzureWebJobsStorage", connection_string)
        monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:7071")
        monkeypatch.setenv("SECRET_ENCRYPTION_KEY", base64.b64encode(b"k" * 32).decode())
        context.reset()

    yield configure
    context.reset()


def health_function(use_storage, connection_string: str):
    """The user function behind the app's `health` registration, as the host would call it."""
    use_storage(connection_string)
    module = sys.modules.get("function_app")
    module = importlib.reload(module) if module else importlib.import_module("function_app")
    (function,) = [f for f in module.app.get_functions() if f.get_function_name() == "health"]
    return function.get_user_function()


def get_health(user_function) -> func.HttpResponse:
    request = func.HttpRequest(method="GET", url="http://127.0.0.1:7071/api/health", body=b"", headers={})
    return user_function(request)


def test_healthy_when_storage_answers(use_storage, storage_connection_string):
    response = get_health(health_function(use_storage, storage_connection_string))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.get_body()) == {"status": "ok", "version": __version__, "storage": "reachable"}


def test_unhealthy_naming_storage_when_nothing_listens(use_storage):
    connection_string = connection_string_for_closed_port()
    started = time.monotonic()
    response = get_health(health_function(use_storage, connection_string))
    elapsed = time.monotonic() - started
    body = json.loads(response.get_body())
    assert response.status_code == 503
    assert body["status"] == "unhealthy" and body["failing"] == ["storage"] and body["storage"] == "unreachable"
    assert body["detail"].startswith("storage: cannot connect")
    text = response.get_body().decode()
    assert DEAD_ACCOUNT_KEY not in text and "AccountKey" not in text and "127.0.0.1" not in text
    # Retries would add seconds of back-off; a probe must answer well inside a monitor's timeout.
    assert elapsed < 3.0


def test_unhealthy_when_storage_rejects_the_account_key(use_storage, storage_connection_string):
    forged = storage_connection_string.replace(
        storage_connection_string.split("AccountKey=")[1].split(";")[0], DEAD_ACCOUNT_KEY
    )
    response = get_health(health_function(use_storage, forged))
    body = json.loads(response.get_body())
    assert response.status_code == 503 and body["failing"] == ["storage"]
    assert body["detail"] == "storage: credentials were refused"
    assert DEAD_ACCOUNT_KEY not in response.get_body().decode()


# -- the verdict itself, with injected probes ------------------------------------------------

def fails_with(error: BaseException):
    def probe():
        raise error
    return probe


def test_every_probe_runs_and_each_failure_is_named():
    ran = []
    report = check_health(
        {
            "storage": fails_with(ServiceRequestError("connect to http://acct:SECRET@host refused")),
            "graph": lambda: ran.append("graph"),
            "queues": fails_with(RuntimeError("token=SECRET")),
        },
        version="9.9.9",
    )
    assert ran == ["graph"]
    body = report.as_dict()
    assert body["status"] == "unhealthy" and body["version"] == "9.9.9"
    assert body["failing"] == ["storage", "queues"] and body["graph"] == "reachable"
    assert body["detail"] == "storage: cannot connect (refused, unresolvable or timed out); queues: failed (RuntimeError)"
    assert "SECRET" not in json.dumps(body)


@pytest.mark.parametrize(
    "error, expected",
    [
        (ClientAuthenticationError("bad key SECRET"), "credentials were refused"),
        (HttpResponseError(message="SECRET"), "answered with an error"),
        (SettingsError("PUBLIC_BASE_URL", "not set"), "setting PUBLIC_BASE_URL is invalid"),
    ],
)
def test_failures_are_described_by_kind(error, expected):
    report = check_health({"storage": fails_with(error)}, version="1")
    assert report.failing == ("storage",)
    assert expected in report.details[0] and "SECRET" not in report.details[0]


def test_healthy_with_no_failures():
    report = check_health({"storage": lambda: None}, version="1")
    assert report.healthy and report.as_dict() == {"status": "ok", "version": "1", "storage": "reachable"}
