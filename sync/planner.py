"""The inbound planner: what to do with one Outlook item of a room's calendar, decided from
the item as just read, the reservation it is linked to (if any), the asset's other confirmed
reservations it overlaps, and the integration's policy. Pure: no Graph, no Tables, no clock.

Every outcome is one Decision; the worker carries it out under the asset's lock and logs it.
The rules make repeated and reordered deliveries converge:
- the worker always re-reads the item, so a decision is about the item's latest state;
- a read older than the one last applied (lastModifiedDateTime) is ignored, so two workers
  racing can only move a reservation forward;
- a reservation created from a room item has an id derived from that item's id, so two
  workers that both decide "create" write the same row.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Sequence

from sync.booking_model import (
    CANCELLED, CONFIRMED, DECLINED, FROM_OUTLOOK, FROM_PLATFORM, PENDING, PRIVATE_SUBJECT, SYNCED, Asset,
    Organizer, Reservation,
)
from sync.room_events import RoomEvent
from sync.store.reservations_repo import reservation_id_for_event

CREATE, UPDATE, CANCEL, IGNORE, DECLINE, DEFER = "create", "update", "cancel", "ignore", "decline", "defer"

# Integration policy for organizers who are not active people of the integration.
BOOK_AS_GUEST = "guest"
DECLINE_UNKNOWN = "decline"


@dataclass(frozen=True)
class Policy:
    unknown_organizer: str = BOOK_AS_GUEST
    recover_subject: bool = True


@dataclass(frozen=True)
class Context:
    asset: Asset
    now: datetime
    policy: Policy = Policy()
    organizer: Organizer | None = None  # resolved against the integration's people
    organizer_active: bool = False
    importing: bool = False
    subject: str | None = None  # recovered from the organizer's copy, when it was
    gone: bool = False  # the item was deleted or cancelled earlier with nothing linked (a tombstone)


@dataclass(frozen=True)
class Decision:
    kind: str
    reason: str
    before: Reservation | None = None
    after: Reservation | None = None  # the reservation to write, if any
    comment: str | None = None  # for DECLINE: what the organizer reads
    tombstone: bool = False  # remember that this item is gone, so an older read cannot revive it

    @property
    def writes(self) -> bool:
        return self.after is not None and self.after != self.before


def plan(event: RoomEvent | None, linked: Reservation | None, overlapping: Sequence[Reservation],
         ctx: Context) -> Decision:
    if event is None or event.is_cancelled:
        return _gone(linked, ctx, "deleted in Outlook" if event is None else "cancelled in Outlook")
    if linked is None and ctx.gone:
        return Decision(IGNORE, "an older read of a meeting already deleted or cancelled in Outlook")
    if event.room_response == "declined":
        return _gone(linked, ctx, "the room declined the meeting")
    if linked is not None:
        return _follow(event, linked, overlapping, ctx)
    return _new(event, overlapping, ctx)


def _gone(linked: Reservation | None, ctx: Context, why: str) -> Decision:
    if linked is None:
        return Decision(IGNORE, f"{why}; no reservation was linked", tombstone=not ctx.gone)
    if linked.status != CONFIRMED:
        return Decision(IGNORE, f"{why}; the reservation is already {linked.status}", before=linked)
    status = DECLINED if why.startswith("the room declined") and linked.origin == FROM_PLATFORM else CANCELLED
    after = linked.changed(ctx.now, status=status, sync_status=SYNCED, sync_reason=why)
    return Decision(CANCEL, why, before=linked, after=after)


def _follow(event: RoomEvent, linked: Reservation, overlapping: Sequence[Reservation], ctx: Context) -> Decision:
    if (linked.source_modified_at and event.modified_at and event.modified_at < linked.source_modified_at):
        return Decision(IGNORE, "an older version of the meeting than the one already applied", before=linked)
    if linked.status != CONFIRMED:
        if linked.origin == FROM_OUTLOOK and linked.room_event_id and event.id != linked.room_event_id:
            # The room was taken off the meeting and invited again: a new item of the same
            # meeting that the room accepted is a new booking, not the cancelled one.
            return _new(event, overlapping, ctx)
        return Decision(IGNORE, f"the reservation is {linked.status}; Outlook changes no longer apply", before=linked)
    if linked.origin == FROM_PLATFORM and linked.sync_status == PENDING:
        # The booker's change is on its way to Outlook; the item still shows the state before it,
        # and taking that would undo the change (the outbound worker would then push it back).
        return Decision(IGNORE, "a platform change of this booking is not in Outlook yet", before=linked)
    after = _mirror(linked, event, ctx)
    if after.start != linked.start or after.end != linked.end:
        clash = _clash(overlapping, after, exclude=linked.id)
        if clash is not None:
            cancelled = after.changed(ctx.now, status=CANCELLED, start=linked.start, end=linked.end,
                                      sync_reason=f"moved onto reservation {clash.id}")
            return Decision(DECLINE, f"the new time conflicts with reservation {clash.id}", before=linked,
                            after=cancelled, comment=_conflict_comment(ctx.asset))
    if _same(after, linked):
        return Decision(IGNORE, "nothing changed", before=linked, after=_versioned(linked, event))
    return Decision(UPDATE, "the meeting changed in Outlook", before=linked, after=after)


def _new(event: RoomEvent, overlapping: Sequence[Reservation], ctx: Context) -> Decision:
    subscribed_at = ctx.asset.subscription.subscribed_at
    if not ctx.importing and subscribed_at and event.created_at and event.created_at < subscribed_at:
        return Decision(IGNORE, "created before the asset was subscribed (import brings such bookings in)")
    reservation = _mirror(None, event, ctx)
    for other in overlapping:
        if (other.origin == FROM_PLATFORM and other.sync_status == PENDING and not other.ical_uid
                and other.start == reservation.start and other.end == reservation.end):
            return Decision(DEFER, f"may be the platform's own meeting for reservation {other.id}, not yet linked")
    clash = _clash(overlapping, reservation, exclude=None)
    if clash is not None:
        return Decision(DECLINE, f"conflicts with reservation {clash.id}", comment=_conflict_comment(ctx.asset))
    if not ctx.organizer_active and ctx.policy.unknown_organizer == DECLINE_UNKNOWN:
        return Decision(DECLINE, "the organizer is not an active person of this integration",
                        comment=f"{ctx.asset.name} can only be booked by people of this organisation.")
    return Decision(CREATE, "a new meeting with the room", after=reservation)


def _mirror(base: Reservation | None, event: RoomEvent, ctx: Context) -> Reservation:
    organizer = ctx.organizer or Organizer(email=event.organizer_email, user_id=None, name=event.organizer_name)
    subject = PRIVATE_SUBJECT if event.private else (ctx.subject or event.subject or "")
    fields = dict(start=event.start, end=event.end, subject=subject, private=event.private,
                  series_id=event.series_id, occurrence_start=event.original_start,
                  ical_uid=event.ical_uid or (base.ical_uid if base else None), room_event_id=event.id,
                  source_change_key=event.change_key, source_modified_at=event.modified_at)
    if base is not None:
        if base.origin == FROM_PLATFORM:
            # The platform wrote subject and privacy; the room copy only shows Exchange's rendering.
            # Its series too: a platform series reaches Outlook as single meetings, one per occurrence.
            fields.update(subject=base.subject, private=base.private, series_id=base.series_id,
                          occurrence_start=base.occurrence_start)
        return base.changed(ctx.now, **fields)
    return Reservation(
        id=reservation_id_for_event(ctx.asset.id, event.id), integration_id=ctx.asset.integration_id,
        asset_id=ctx.asset.id, time_zone=ctx.asset.time_zone, organizer=organizer, origin=FROM_OUTLOOK,
        status=CONFIRMED, sync_status=SYNCED, sync_reason=None, created_at=ctx.now, updated_at=ctx.now,
        body=None, **fields)


def _versioned(linked: Reservation, event: RoomEvent) -> Reservation:
    """The same reservation, remembering the newest version seen (so older reads stay ignored)."""
    if linked.source_modified_at == event.modified_at and linked.room_event_id == event.id:
        return linked
    return replace(linked, source_modified_at=event.modified_at, source_change_key=event.change_key,
                   room_event_id=event.id)


def _same(a: Reservation, b: Reservation) -> bool:
    keys = ("start", "end", "subject", "private", "series_id", "occurrence_start")
    return all(getattr(a, key) == getattr(b, key) for key in keys)


def _clash(overlapping: Sequence[Reservation], candidate: Reservation, *, exclude: str | None) -> Reservation | None:
    for other in overlapping:
        if other.id != exclude and other.id != candidate.id and other.is_confirmed and other.overlaps(
                candidate.start, candidate.end):
            return other
    return None


def _conflict_comment(asset: Asset) -> str:
    return f"{asset.name} is already booked at this time in the workplace booking system."
