"""A sleeper for the Graph client that records the waits it is asked for instead of sleeping,
so retry and back-off tests neither wait for real time nor lose sight of what was asked."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RecordingSleeper:
    """Records the waits the client asks for instead of sleeping."""
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    @property
    def total(self) -> float:
        return sum(self.waits)
