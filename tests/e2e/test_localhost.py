"""The local Functions host against real Azurite, with the sample app in tests/e2e/sample_app.

One host serves the whole module (queue poll 0.1 s); each test observes results through HTTP,
through Azurite, or through what the sample functions recorded, polling with a deadline.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import azure.functions as func
import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from devtools.localhost import LocalHost, LocalHostError
from devtools.localhost.host_config import HostConfigError, QueueOptions, host_config_from_dict, load_host_config
from devtools.localhost.invocation import Invoker
from devtools.localhost.metadata import FunctionInfo
from devtools.localhost.queue_runner import QueueRunner, QueueTrigger
from devtools.localhost.routing import RouteError, RouteTemplate
from devtools.localhost.settings_file import apply_values, read_values
from devtools.ports import free_port
from tests.e2e.sample_app import function_app as sample
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = Path(__file__).resolve().parent / "sample_app"
FUNCTION_KEYS = ("fk-first-7c1", "fk-second-9d2")
MASTER_KEY = "mk-admin-4e8"


@pytest.fixture(scope="module")
def queue_names():
    run = uuid.uuid4().hex[:10]
    return {
        "SAMPLE_OUTPUT_QUEUE": f"out-{run}",
        "SAMPLE_WORK_QUEUE": f"work-{run}",
        "SAMPLE_SEEN_QUEUE": f"seen-{run}",
        "SAMPLE_FAILING_QUEUE": f"fail-{run}",
    }


@pytest.fixture(scope="module")
def host(storage_connection_string, queue_names):
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "LOCAL_FUNCTION_KEY": ",".join(FUNCTION_KEYS),
        "LOCAL_MASTER_KEY": MASTER_KEY,
        "SAMPLE_TICK_SCHEDULE": "* * * * * *",
        **queue_names,
    }
    local = LocalHost(sample.app, 0, host_config=SAMPLE_DIR / "host.json", settings=settings, queue_poll_seconds=0.1)
    with local:
        yield local


@pytest.fixture(scope="module")
def queues(storage_connection_string):
    """Raw access to Azurite's queues: message text exactly as stored (no decoding)."""
    with QueueServiceClient.from_connection_string(storage_connection_string) as service:
        yield service


def url(host, path: str) -> str:
    return f"{host.base_url}/{path.lstrip('/')}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def drain(queues, queue_name: str) -> list[str]:
    """Receive and delete what is visible in a queue; the stored texts."""
    client = queues.get_queue_client(queue_name)
    texts = []
    try:
        for message in client.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=30):
            texts.append(message.content)
            client.delete_message(message)
    except ResourceNotFoundError:  # output and poison queues appear with their first message
        return []
    return texts


def message_count(queues, queue_name: str) -> int:
    return queues.get_queue_client(queue_name).get_queue_properties().approximate_message_count


# --- HTTP ---------------------------------------------------------------------------------------

def test_route_parameters_reach_the_function(host):
    response = requests.get(url(host, "api/rooms/r-12/slots/7?view=day"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Sample"] == "room-slot"
    assert response.json() == {"route_params": {"room_id": "r-12", "slot": "7"}, "query": {"view": "day"},
                               "method": "GET"}

    with_label = requests.get(url(host, "api/rooms/r-12/slots/7/morning"), timeout=5).json()
    assert with_label["route_params"] == {"room_id": "r-12", "slot": "7", "label": "morning"}


def test_constraints_literals_and_catch_all_choose_the_route(host):
    assert requests.get(url(host, "api/rooms/r-12/slots/seven"), timeout=5).status_code == 404
    special = requests.get(url(host, "api/rooms/special/slots/3"), timeout=5)
    assert (special.status_code, special.text) == (200, "special 3")
    assert special.headers["Content-Type"].startswith("text/plain")
    assert requests.get(url(host, "api/files/a/b/plan.txt"), timeout=5).text == "a/b/plan.txt"
    assert requests.get(url(host, "api/nothing-here"), timeout=5).status_code == 404
    assert requests.get(url(host, "rooms/r-12/slots/7"), timeout=5).status_code == 404  # outside the prefix


def test_a_method_the_route_does_not_allow_is_405(host):
    response = requests.post(url(host, "api/rooms/r-12/slots/7"), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"


def test_function_level_route_needs_one_of_the_function_keys(host):
    assert requests.get(url(host, "api/secret"), timeout=5).status_code == 401
    assert requests.get(url(host, "api/secret"), params={"code": "wrong"}, timeout=5).status_code == 401
    assert requests.get(url(host, "api/secret"), headers={"x-functions-key": "wrong"}, timeout=5).status_code == 401

    by_query = requests.get(url(host, "api/secret"), params={"code": FUNCTION_KEYS[1]}, timeout=5)
    assert (by_query.status_code, by_query.text) == (200, "secret ok")
    by_header = requests.post(url(host, "api/secret"), headers={"x-functions-key": FUNCTION_KEYS[0]}, timeout=5)
    assert by_header.status_code == 200
    assert requests.get(url(host, "api/secret"), params={"code": MASTER_KEY}, timeout=5).status_code == 200


def test_admin_level_route_needs_the_master_key(host):
    assert requests.get(url(host, "api/operator"), params={"code": FUNCTION_KEYS[0]}, timeout=5).status_code == 401
    response = requests.get(url(host, "api/operator"), headers={"x-functions-key": MASTER_KEY}, timeout=5)
    assert (response.status_code, response.text) == (200, "operator ok")


def test_async_function_gets_the_body_and_sets_status_and_mimetype(host):
    payload = bytes(range(256))
    response = requests.post(url(host, "api/echo"), data=payload, timeout=5)
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == payload


def test_a_raising_function_answers_500_and_logs_the_traceback(host, caplog):
    caplog.set_level(logging.INFO, logger="devtools.localhost")
    response = requests.get(url(host, "api/broken"), timeout=5)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert "internal detail" not in response.text
    assert response.json()["error"] == "internal server error"
    failure = wait_for(lambda: [r for r in caplog.records if r.exc_info and "broken" in r.getMessage()],
                       what="the failure log record")
    assert "sample failure with internal detail" in caplog.text
    assert failure[0].exc_info[0] is RuntimeError


def test_keys_never_appear_in_the_access_log(host, caplog):
    caplog.set_level(logging.INFO, logger="devtools.localhost")
    requests.get(url(host, "api/secret"), params={"code": FUNCTION_KEYS[0], "page": "2"}, timeout=5)
    access = wait_for(lambda: [r.getMessage() for r in caplog.records if "/api/secret" in r.getMessage()],
                      what="the access log line")
    assert "code=<redacted>" in access[0] and "page=2" in access[0]
    assert FUNCTION_KEYS[0] not in caplog.text


# --- queues -------------------------------------------------------------------------------------

def test_queue_output_binding_lands_in_azurite_base64_encoded(host, queues, queue_names):
    response = requests.post(url(host, "api/enqueue"), data="first line\nsecond line", timeout=5)
    assert response.status_code == 202
    stored = wait_for(lambda: drain(queues, queue_names["SAMPLE_OUTPUT_QUEUE"]), what="output messages")
    assert sorted(stored) == sorted([b64("first line"), b64("second line")])


def test_a_queue_message_reaches_its_function(host, queues, queue_names):
    work = queues.get_queue_client(queue_names["SAMPLE_WORK_QUEUE"])
    sent = work.send_message(b64("book room 4.12"))
    seen = wait_for(lambda: drain(queues, queue_names["SAMPLE_SEEN_QUEUE"]), what="the function's record")
    record = json.loads(base64.b64decode(seen[0]))
    assert record["id"] == sent.id
    assert record["body"] == "book room 4.12"
    assert record["dequeue_count"] == 1
    assert record["has_pop_receipt"] is True
    assert record["insertion_time"] and record["expiration_time"] and record["next_visible"]
    wait_for(lambda: message_count(queues, queue_names["SAMPLE_WORK_QUEUE"]) == 0, what="the message deleted")


def test_a_message_that_always_fails_moves_to_poison_after_max_dequeue_count(host, queues, queue_names):
    configured = load_host_config(SAMPLE_DIR / "host.json").queues.max_dequeue_count
    assert configured == 3 and host.config.queues.max_dequeue_count == configured
    failing = queue_names["SAMPLE_FAILING_QUEUE"]
    body = f"doomed {uuid.uuid4().hex}"
    queues.get_queue_client(failing).send_message(b64(body))

    poisoned = wait_for(lambda: drain(queues, f"{failing}-poison"), what="the poison message")
    assert poisoned == [b64(body)]
    wait_for(lambda: message_count(queues, failing) == 0, what="the original deleted")
    attempts = [call["dequeue_count"] for call in sample.recorded.get("always_fails") if call["body"] == body]
    assert attempts == list(range(1, configured + 1))


def test_admin_endpoint_runs_a_queue_function_on_demand(host, queues, queue_names):
    target = url(host, "admin/functions/record_work")
    assert requests.post(target, json={"input": "x"}, params={"code": FUNCTION_KEYS[0]}, timeout=5).status_code == 401
    started = requests.post(target, json={"input": "run by hand"}, headers={"x-functions-key": MASTER_KEY}, timeout=5)
    assert started.status_code == 202
    seen = wait_for(lambda: drain(queues, queue_names["SAMPLE_SEEN_QUEUE"]), what="the on-demand record")
    assert json.loads(base64.b64decode(seen[0]))["body"] == "run by hand"
    missing = requests.post(url(host, "admin/functions/nope"), headers={"x-functions-key": MASTER_KEY}, timeout=5)
    assert missing.status_code == 404


def _runner_with_fake_storage(function, visibility_timeout=30.0, max_dequeue_count=3):
    """A QueueRunner whose storage is a fake that records what was sent, deleted and released."""
    class FakeQueue:
        def __init__(self):
            self.sent, self.deleted, self.released = [], [], []

        def send_message(self, text):
            self.sent.append(text)

        def delete_message(self, message_id, pop_receipt):
            self.deleted.append(message_id)

        def update_message(self, message_id, pop_receipt, visibility_timeout):
            self.released.append((message_id, visibility_timeout))

    class FakeClients:
        def __init__(self):
            self.queues = {}

        def queue(self, connection, name):
            return self.queues.setdefault(name, FakeQueue())

    info = FunctionInfo(name="work", trigger_type="queueTrigger", trigger_name="msg", function=function,
                        queue_name="work", connection="AzureWebJobsStorage")
    clients = FakeClients()
    options = QueueOptions(visibility_timeout=visibility_timeout, max_dequeue_count=max_dequeue_count)
    runner = QueueRunner(QueueTrigger(info, "work", "AzureWebJobsStorage"), Invoker(lambda *a: None), clients,
                         options, poll_seconds=0.1)
    return runner, clients


def _stored(dequeue_count: int, text: str = b64("payload")):
    return SimpleNamespace(id=f"m{dequeue_count}", content=text, dequeue_count=dequeue_count, pop_receipt="pr",
                           expires_on=None, inserted_on=None, next_visible_on=None)


def test_settling_messages_follows_the_queue_listener_rules():
    calls = []

    def fails(msg):
        calls.append(msg.dequeue_count)
        raise RuntimeError("fails")

    runner, clients = _runner_with_fake_storage(fails)
    try:
        runner.process(_stored(1))  # early failure: visible again after visibilityTimeout
        assert clients.queues["work"].released == [("m1", 30)] and clients.queues["work"].deleted == []
        runner.process(_stored(3))  # the maxDequeueCount-th failure: copied to poison, deleted
        assert clients.queues["work-poison"].sent == [b64("payload")] and clients.queues["work"].deleted == ["m3"]
        runner.process(_stored(4))  # dequeued too often already: poisoned without running
        assert calls == [1, 3]
        assert clients.queues["work-poison"].sent == [b64("payload")] * 2 and clients.queues["work"].deleted[-1] == "m4"
        runner.process(_stored(1, text="not base64!"))  # cannot decode: a failed attempt
        assert clients.queues["work"].released[-1] == ("m1", 30) and calls == [1, 3]
    finally:
        runner.stop()


def test_a_successful_message_is_deleted_and_its_body_reaches_the_function():
    bodies = []
    runner, clients = _runner_with_fake_storage(lambda msg: bodies.append(msg.get_body()))
    try:
        runner.process(_stored(2, text=b64("hello")))
        assert bodies == [b"hello"]
        assert clients.queues["work"].deleted == ["m2"] and clients.queues["work"].released == []
        assert "work-poison" not in clients.queues
    finally:
        runner.stop()


# --- timers -------------------------------------------------------------------------------------

def test_a_timer_fires_every_second_with_a_timer_request(host):
    before = len(sample.recorded.get("tick"))

    def two_new_ticks():
        ticks = sample.recorded.get("tick")[before:]
        return ticks if len(ticks) >= 2 else None

    ticks = wait_for(two_new_ticks, timeout=5, what="two timer firings")
    first, second = ticks[0], ticks[1]
    assert isinstance(first["timer"], func.TimerRequest)
    assert first["timer"].past_due is False
    assert "Next" in first["timer"].schedule_status
    assert 0.5 <= (second["at"] - first["at"]).total_seconds() <= 1.9


# --- start-up checks ----------------------------------------------------------------------------

def test_a_missing_setting_or_bad_schedule_stops_the_start_with_its_name(storage_connection_string):
    base = {"AzureWebJobsStorage": storage_connection_string, "SAMPLE_OUTPUT_QUEUE": "q-out", "SAMPLE_WORK_QUEUE": "q-w",
            "SAMPLE_SEEN_QUEUE": "q-s", "SAMPLE_FAILING_QUEUE": "q-f", "SAMPLE_TICK_SCHEDULE": "* * * * * *"}
    for missing in ("SAMPLE_WORK_QUEUE", "SAMPLE_TICK_SCHEDULE", "AzureWebJobsStorage"):
        settings = {k: v for k, v in base.items() if k != missing}
        with pytest.raises(LocalHostError, match=missing):
            LocalHost(sample.app, 0, settings=settings).start()
    with pytest.raises(LocalHostError, match="hour field"):
        LocalHost(sample.app, 0, settings={**base, "SAMPLE_TICK_SCHEDULE": "0 0 25 * * *"}).start()


@pytest.mark.parametrize(
    "template, path, expected",
    [
        ("api/items/{id:int}", "/api/items/42", {"id": "42"}),
        ("api/items/{id:int}", "/api/items/4x", None),
        ("api/items/{id:int:range(1,9)}", "/api/items/10", None),
        ("api/items/{id:guid}", "/api/items/0f8fad5b-d9cb-469f-a165-70867728950e",
         {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"}),
        ("api/Items/{name:alpha:minlength(2)}", "/API/items/ab", {"name": "ab"}),
        ("api/items/{name:regex(^[a-z]{{2}}$)}", "/api/items/ab", {"name": "ab"}),
        ("api/items/{name:regex(^[a-z]{{2}}$)}", "/api/items/abc", None),
        ("api/items/{page=1}", "/api/items", {"page": "1"}),
        ("api/items/{page?}", "/api/items/", {}),
        ("api/files/{name}.{ext}", "/api/files/plan.v2.pdf", {"name": "plan.v2", "ext": "pdf"}),
        ("api/docs/{**rest}", "/api/docs/a/b", {"rest": "a/b"}),
        ("api/docs/{*rest}", "/api/docs", {}),
    ],
)
def test_route_templates(template, path, expected):
    assert RouteTemplate(template).match(path) == expected


@pytest.mark.parametrize("template", ["api/{*rest}/x", "api/{id}/{id}", "api/{id:nope}", "api/{id", "api/{1x}"])
def test_bad_route_templates_are_refused(template):
    with pytest.raises(RouteError, match="route"):
        RouteTemplate(template)


def test_host_json_defaults_and_errors(tmp_path):
    defaults = host_config_from_dict({})
    assert (defaults.route_prefix, defaults.queues.max_dequeue_count, defaults.queues.visibility_timeout,
            defaults.queues.batch_size) == ("api", 5, 0.0, 16)
    custom = host_config_from_dict({"extensions": {"http": {"routePrefix": "/v1/"},
                                                   "queues": {"visibilityTimeout": "00:01:30"}}})
    assert (custom.route_prefix, custom.queues.visibility_timeout) == ("v1", 90.0)
    with pytest.raises(HostConfigError, match="batchSize"):
        host_config_from_dict({"extensions": {"queues": {"batchSize": 64}}})
    with pytest.raises(HostConfigError, match="visibilityTimeout"):
        host_config_from_dict({"extensions": {"queues": {"visibilityTimeout": 30}}})
    broken = tmp_path / "host.json"
    broken.write_text("{ not json")
    with pytest.raises(HostConfigError, match="host.json is not valid JSON"):
        load_host_config(broken)


def test_settings_file_values_never_override_the_environment(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file", "N": 3}}))
    environ = {"A": "from-shell"}
    assert sorted(apply_values(read_values(path), environ)) == ["B", "N"]
    assert environ == {"A": "from-shell", "B": "from-file", "N": "3"}


# --- command line -------------------------------------------------------------------------------

def _cli(settings_file: Path, port: int, env_overrides: dict) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLE_")}
    env.update(env_overrides)
    command = [sys.executable, "-m", "devtools.localhost", "--app", str(SAMPLE_DIR / "function_app.py"),
               "--port", str(port), "--settings", str(settings_file),
               "--settings-check", "tests.e2e.sample_app.settings_check:check"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_until(stream, marker: str, timeout: float) -> list[str]:
    """Lines from a pipe up to the one containing marker (read in a thread, so the deadline holds)."""
    lines: list[str] = []
    done = threading.Event()

    def reader():
        for line in stream:
            lines.append(line.rstrip("\n"))
            if marker in line:
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    assert done.wait(timeout), f"no '{marker}' within {timeout} s; got {lines}"
    return lines


@pytest.fixture
def settings_file(tmp_path, storage_connection_string):
    path = tmp_path / "local.settings.json"
    run = uuid.uuid4().hex[:8]
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {
        "AzureWebJobsStorage": storage_connection_string,
        "SAMPLE_REQUIRED_SETTING": "present",
        "SAMPLE_OUTPUT_QUEUE": f"cli-out-{run}", "SAMPLE_WORK_QUEUE": f"cli-work-{run}",
        "SAMPLE_SEEN_QUEUE": f"cli-seen-{run}", "SAMPLE_FAILING_QUEUE": f"cli-fail-{run}",
        "SAMPLE_TICK_SCHEDULE": "0 0 0 1 1 *",
    }}))
    return path


def test_command_line_serves_the_app_prints_routes_and_stops_on_ctrl_c(settings_file):
    port = free_port()
    process = _cli(settings_file, port, {"SAMPLE_TICK_SCHEDULE": "0 0 12 1 1 *"})
    try:
        lines = _read_until(process.stdout, "Press Ctrl-C", timeout=20)
        assert f"room_slot: [GET] http://127.0.0.1:{port}/api/rooms/{{room_id}}/slots/{{slot:int}}/{{label?}}" in \
            [line.strip() for line in lines]
        assert any("tick: timerTrigger 0 0 12 1 1 * UTC" in line for line in lines)  # the shell's value won
        response = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_line_exits_2_with_the_settings_check_line(settings_file):
    values = json.loads(settings_file.read_text())
    del values["Values"]["SAMPLE_REQUIRED_SETTING"]
    settings_file.write_text(json.dumps(values))
    process = _cli(settings_file, free_port(), {})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        "error: setting SAMPLE_REQUIRED_SETTING is missing: set it in local.settings.json"
    ]
