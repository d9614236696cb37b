"""Import of bookings that existed before an asset was subscribed (which the live sync ignores
on purpose): a dry run reports what would be created, what is already linked and what conflicts;
applying does the same through the inbound path, creating only, never declining a meeting that
was already in the room's calendar."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from graph.events import calendar_view
from sync.inbound import InboundSync, ItemReport
from sync.planner import CREATE, DECLINE, Context, plan
from sync.reservation_reads import instant
from sync.room_events import UnreadableEvent, read_event
from sync.store.reservations_repo import ReservationsRepo
from sync.validation import Problem, reject_unknown

MAX_WINDOW = timedelta(days=366)


class BookingImport:
    def __init__(self, *, inbound: InboundSync, reservations: ReservationsRepo) -> None:
        self.inbound = inbound
        self.reservations = reservations

    def run(self, integration, asset, data: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(data, frozenset({"from", "to", "dry_run"}))
        params = {k: v for k, v in data.items() if k in ("from", "to") and isinstance(v, str)}
        start, end = instant(params, "from"), instant(params, "to")
        if start is None or end is None:
            raise Problem(400, "missing_field", "from and to are required (ISO 8601 with an offset)",
                          field="from" if start is None else "to")
        if end <= start or end - start > MAX_WINDOW:
            raise Problem(422, "invalid_field", "to: must be after from, at most 366 days later", field="to")
        dry_run = data.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise Problem(422, "invalid_field", "dry_run: must be true or false", field="dry_run")
        report: dict[str, list] = {"created": [], "linked": [], "conflicts": [], "skipped": []}
        client = self.inbound.access.client_for(integration)
        try:
            for raw in calendar_view(client, asset.mailbox, start, end):
                try:
                    event = read_event(raw, asset.mailbox)
                except UnreadableEvent as problem:
                    report["skipped"].append({"event_id": str(raw.get("id"))[:200], "reason": str(problem)})
                    continue
                summary = {"event_id": event.id, "start": event.start.isoformat().replace("+00:00", "Z"),
                           "end": event.end.isoformat().replace("+00:00", "Z"),
                           "subject": "Private" if event.private else event.subject,
                           "organizer": event.organizer_email}
                if dry_run:
                    kind, reason, reservation_id = self._classify(integration, asset, event)
                else:
                    item = ItemReport(event.id)
                    decision = self.inbound._apply(client, integration, asset, event.id, event, item, importing=True,
                                                   may_decline=False)
                    kind, reason = _bucket(decision.kind, decision.before is not None), decision.reason
                    reservation_id = (decision.after or decision.before).id if (decision.after or decision.before) else None
                    self.inbound._log(asset, event.id, "import", item)
                report[kind].append({**summary, "reason": reason, "reservation_id": reservation_id})
            if not dry_run:
                self.inbound.outbox.flush(asset.integration_id, asset.id)
        finally:
            client.close()
        return {"dry_run": dry_run, "from": params["from"], "to": params["to"],
                **report, "counts": {key: len(value) for key, value in report.items()}}

    def _classify(self, integration, asset, event):
        linked = self.reservations.find(asset.integration_id, asset.id, room_event_id=event.id,
                                        ical_uid=event.ical_uid)
        overlapping = self.reservations.overlapping(asset.integration_id, asset.id, event.start, event.end)
        organizer, active = self.inbound._organizer(integration, event)
        ctx = Context(asset=asset, now=self.inbound.clock(), organizer=organizer, organizer_active=active,
                      importing=True)
        decision = plan(event, linked, overlapping, ctx)
        reservation = decision.after or decision.before
        return _bucket(decision.kind, linked is not None), decision.reason, reservation.id if reservation else None


def _bucket(kind: str, was_linked: bool) -> str:
    if was_linked:
        return "linked"
    if kind == CREATE:
        return "created"
    if kind == DECLINE:
        return "conflicts"
    return "skipped"
