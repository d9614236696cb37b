"""Sample app for the local host's tests: one function per behaviour the host must get right.

Queue names and the timer schedule are `%SETTING%` references, so each test run uses fresh
queues. What the queue and timer functions saw is recorded in `recorded` (this module runs in
the test's process) or written to a queue through an output binding (observed via Azurite).
"""
from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timezone

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class Recorder:
    """Thread-safe lists of what functions were called with, by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, list] = {}

    def add(self, name: str, value) -> None:
        with self._lock:
            self._calls.setdefault(name, []).append(value)

    def get(self, name: str) -> list:
        with self._lock:
            return list(self._calls.get(name, []))


recorded = Recorder()


@app.route(route="rooms/{room_id}/slots/{slot:int}/{label?}", methods=["GET"])
def room_slot(req: func.HttpRequest) -> func.HttpResponse:
    payload = {"route_params": dict(req.route_params), "query": dict(req.params), "method": req.method}
    return func.HttpResponse(json.dumps(payload), mimetype="application/json", headers={"X-Sample": "room-slot"})


@app.route(route="rooms/special/slots/{slot:int}", methods=["GET"])
def special_slot(req: func.HttpRequest) -> str:
    return f"special {req.route_params['slot']}"


@app.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("path", ""), status_code=200)


@app.route(route="secret", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("secret ok", status_code=200)


@app.route(route="operator", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def operator(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("operator ok")


@app.route(route="echo", methods=["POST"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(req.get_body(), status_code=201, mimetype="application/octet-stream")


@app.route(route="broken", methods=["GET"])
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("sample failure with internal detail")


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"status": "ok"}), mimetype="application/json")


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="outbox", queue_name="%SAMPLE_OUTPUT_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, outbox: func.Out[list]) -> func.HttpResponse:
    lines = req.get_body().decode("utf-8").splitlines()
    outbox.set(lines)
    return func.HttpResponse(status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_WORK_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="seen", queue_name="%SAMPLE_SEEN_QUEUE%", connection="AzureWebJobsStorage")
def record_work(msg: func.QueueMessage, seen: func.Out[str]) -> None:
    seen.set(json.dumps({
        "id": msg.id,
        "body": msg.get_body().decode("utf-8"),
        "dequeue_count": msg.dequeue_count,
        "has_pop_receipt": bool(msg.pop_receipt),
        "insertion_time": msg.insertion_time.isoformat() if msg.insertion_time else None,
        "expiration_time": msg.expiration_time.isoformat() if msg.expiration_time else None,
        "next_visible": msg.time_next_visible.isoformat() if msg.time_next_visible else None,
    }))


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_FAILING_QUEUE%", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    recorded.add("always_fails", {"body": msg.get_body().decode("utf-8"), "dequeue_count": msg.dequeue_count})
    raise RuntimeError("this function always fails")


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_TICK_SCHEDULE%", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    recorded.add("tick", {"timer": timer, "at": datetime.now(timezone.utc)})
