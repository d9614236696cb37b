"""The benchmark report's pure parts: recording figures and rendering the markdown."""
from __future__ import annotations

import json

from bench import figures, report


def _run(name: str, status: int = 0, document: dict | None = None, images: dict | None = None) -> dict:
    return {"name": name, "args": [], "status": status, "seconds": 12.3, "document": document,
            "images": images or {}}


def _report(runs: list[dict], note: str = "") -> str:
    return report.render({"date": "2030-01-02", "started": "2030-01-02 03:04 UTC", "seconds": 125.0,
                          "machine": {"CPU": "Some CPU", "cores": "2"}, "load": "", "note": note, "runs": runs})


def test_recorder_writes_its_figures_where_the_environment_says(tmp_path, monkeypatch):
    target = tmp_path / "figures.json"
    monkeypatch.setenv(figures.ENVIRONMENT_VARIABLE, str(target))
    recorder = figures.Recorder("demo")
    recorder.parameter("meetings", 5)
    recorder.figure("p95", 2.5, "s", goal="<= 3 s", passed=True)
    recorder.figure("missing", float("nan"), "s")
    recorder.sample("latency", [1, 2.123456], "s")
    assert recorder.save() == target
    written = json.loads(target.read_text())
    assert written["parameters"] == {"meetings": 5}
    assert written["figures"][0] == {"name": "p95", "value": 2.5, "unit": "s", "goal": "<= 3 s", "passed": True,
                                     "note": None}
    assert written["figures"][1]["value"] is None
    assert written["samples"] == {"latency": {"unit": "s", "values": [1.0, 2.1235]}}


def test_recorder_writes_nothing_without_the_variable(monkeypatch):
    monkeypatch.delenv(figures.ENVIRONMENT_VARIABLE, raising=False)
    assert figures.Recorder("demo").save() is None


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert figures.percentile(values, 0.5) == 50
    assert figures.percentile(values, 0.99) == 99
    assert figures.percentile([7], 0.99) == 7


def test_figures_table_shows_goal_and_result():
    document = {"parameters": {"meetings": 200}, "samples": {}, "figures": [
        {"name": "p95", "value": 2.5, "unit": "s", "goal": "<= 3 s", "passed": True, "note": None},
        {"name": "p99", "value": 120.0, "unit": "ms", "goal": "<= 100 ms", "passed": False, "note": "a|b"},
        {"name": "calls", "value": 1234, "unit": "", "goal": None, "passed": None, "note": None}]}
    text = _report([_run("room_inbound", document=document)])
    assert "| room_inbound | p95 | 2.5 s | <= 3 s | pass |  |" in text
    assert "| room_inbound | p99 | 120 ms | <= 100 ms | **FAIL** | a\\|b |" in text
    assert "| room_inbound | calls | 1,234 |  |  |  |" in text
    assert "| bench.room_inbound | (defaults) | meetings=200 | 0 | 12 |" in text
    assert "took 2 min 05 s" in text
    assert "| CPU | Some CPU |" in text


def test_a_failed_script_is_named_and_keeps_its_row():
    text = _report([_run("notification_burst", status=1), _run("user_sync", document={"figures": []})],
                   note="shared machine")
    assert "**Failed:** notification_burst" in text
    assert "| notification_burst | (no figures recorded) | - | | | exit status 1 |" in text
    assert "Note: shared machine" in text


def test_histograms_are_linked_relative_to_the_report():
    document = {"figures": [], "samples": {"webhook": {"unit": "ms", "values": [1.0]}}}
    text = _report([_run("notification_burst", document=document, images={"webhook": "2030-01-02/burst.png"})])
    assert "## Latency histograms" in text
    assert "![notification_burst: webhook](2030-01-02/burst.png)" in text


def test_values_are_formatted_for_reading():
    assert report.format_value(None, "ms") == "-"
    assert report.format_value(0.1234, "s") == "0.12 s"
    assert report.format_value(3.0, "s") == "3 s"
    assert report.format_value(0.0, "s") == "0 s"
    assert report.format_value(12345.6, "users/s") == "12,346 users/s"
    assert report.format_value("10/10", "") == "10/10"
