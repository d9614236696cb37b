"""The figures of one benchmark run in a machine-readable form, for bench/report.py.

Scripts keep printing their figures for people; they also record them here. When the environment
variable BENCH_FIGURES names a file, `save()` writes there one JSON document:

    {"bench": "...", "parameters": {...},
     "figures": [{"name", "value", "unit", "goal", "passed", "note"}],
     "samples": {"name": {"unit": "ms", "values": [...]}}}

`goal` is the goal in words (None for a figure that only informs), `passed` whether the value
meets it (None when there is no goal). `samples` are raw latencies, for the report's histograms.
Without the variable nothing is written, so a script run by hand behaves as before.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

ENVIRONMENT_VARIABLE = "BENCH_FIGURES"


def percentile(values: Iterable[float], share: float) -> float:
    """Nearest-rank percentile (share 0..1); the same rule for every script and the report."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


class Recorder:
    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.parameters: dict[str, Any] = {}
        self.figures: list[dict[str, Any]] = []
        self.samples: dict[str, dict[str, Any]] = {}

    def parameter(self, name: str, value: Any) -> None:
        self.parameters[name] = value

    def figure(self, name: str, value: float | int | str | None, unit: str = "", *, goal: str | None = None,
               passed: bool | None = None, note: str | None = None) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            value = None  # JSON has no NaN; a missing figure reads as "-"
        self.figures.append({"name": name, "value": value, "unit": unit, "goal": goal,
                             "passed": None if passed is None else bool(passed), "note": note})

    def sample(self, name: str, values: Iterable[float], unit: str) -> None:
        self.samples[name] = {"unit": unit, "values": [round(float(v), 4) for v in values]}

    def document(self) -> dict[str, Any]:
        return {"bench": self.bench, "parameters": self.parameters, "figures": self.figures,
                "samples": self.samples}

    def save(self) -> Path | None:
        target = os.environ.get(ENVIRONMENT_VARIABLE)
        if not target:
            return None
        path = Path(target)
        path.write_text(json.dumps(self.document(), indent=1), encoding="utf-8")
        return path
