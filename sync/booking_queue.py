"""Messages on the `booking-changes` queue: ids only, never what to write.

`{"integration_id", "asset_id", "reservation_id", "attempt"?}` asks the outbound worker to bring
one reservation's Outlook meeting in line with the reservation as stored; `{"series_id",
"integration_id"}` asks it to fill a series up to its horizon; `{"integration_id", "answers":
[reservation ids], "attempt"?}` asks it to read the room's answer to those meetings (Exchange
answers a moment after the create, so the answer is read again later). Any number of copies of a
message, in any order, end in the same state: the worker reads the intent row and does what it
says, or nothing when it is gone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from sync.store.reservations_repo import asset_of, is_reservation_id

BOOKING_CHANGES_QUEUE = "booking-changes"
LEAVER_RELEASES_QUEUE = "leaver-releases"
MAX_DELAY_SECONDS = 7 * 24 * 3600 - 1  # Storage's longest visibility timeout
MAX_ANSWERS = 20  # reservations per answers message: one $batch of reads


class BadMessage(ValueError):
    """A message that no retry can make valid (it goes to the poison queue)."""


@dataclass(frozen=True)
class BookingChange:
    integration_id: str
    reservation_id: str | None = None
    series_id: str | None = None
    attempt: int = 0
    answer_ids: tuple[str, ...] = ()

    @property
    def asset_id(self) -> str:
        return asset_of(self.reservation_id or self.series_id or (self.answer_ids[0] if self.answer_ids else ""))

    def as_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"integration_id": self.integration_id}
        if self.reservation_id:
            message.update(asset_id=self.asset_id, reservation_id=self.reservation_id)
        if self.series_id:
            message["series_id"] = self.series_id
        if self.answer_ids:
            message["answers"] = list(self.answer_ids)
        if self.attempt:
            message["attempt"] = self.attempt
        return message

    @classmethod
    def from_message(cls, data: Any) -> "BookingChange":
        if not isinstance(data, Mapping):
            raise BadMessage("a booking-changes message must be a JSON object")
        integration_id = data.get("integration_id")
        reservation_id, series_id = data.get("reservation_id"), data.get("series_id")
        if not isinstance(integration_id, str) or not integration_id:
            raise BadMessage("integration_id: required")
        answers = data.get("answers")
        if sum(value is not None for value in (reservation_id, series_id, answers)) != 1:
            raise BadMessage("exactly one of reservation_id, series_id and answers is required")
        for name, value in (("reservation_id", reservation_id), ("series_id", series_id)):
            if value is not None and not is_reservation_id(value):
                raise BadMessage(f"{name}: not an id of ours")
        if answers is not None and (not isinstance(answers, list) or not 1 <= len(answers) <= MAX_ANSWERS
                                    or not all(is_reservation_id(value) for value in answers)):
            raise BadMessage(f"answers: must be a list of 1 to {MAX_ANSWERS} reservation ids of ours")
        attempt = data.get("attempt", 0)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise BadMessage("attempt: must be a whole number")
        return cls(integration_id=integration_id, reservation_id=reservation_id, series_id=series_id,
                   attempt=attempt, answer_ids=tuple(answers or ()))


class BookingQueue:
    """Puts booking changes on their queue (now, or hidden for a while to retry later)."""

    def __init__(self, publisher) -> None:
        self._publisher = publisher

    def send(self, change: BookingChange, delay_seconds: float = 0) -> None:
        delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
        self._publisher.send(change.as_message(), delay_seconds=delay)


@dataclass(frozen=True)
class LeaverRelease:
    """`{"integration_id", "user_id"}` on `leaver-releases`: the user sync deactivated a person."""

    integration_id: str
    user_id: str

    def as_message(self) -> dict[str, str]:
        return {"integration_id": self.integration_id, "user_id": self.user_id}

    @classmethod
    def from_message(cls, data: Any) -> "LeaverRelease":
        if not isinstance(data, Mapping):
            raise BadMessage("a leaver-releases message must be a JSON object")
        integration_id, user_id = data.get("integration_id"), data.get("user_id")
        if not isinstance(integration_id, str) or not integration_id:
            raise BadMessage("integration_id: required")
        if not isinstance(user_id, str) or not user_id:
            raise BadMessage("user_id: required")
        return cls(integration_id, user_id)
