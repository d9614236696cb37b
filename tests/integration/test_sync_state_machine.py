"""A Hypothesis state machine over the whole room sync: people change meetings in Outlook, the
platform books, moves and cancels, Graph's notifications come late, twice, out of order or never,
workers crash, Graph throttles and fails, subscriptions are lost, people leave and come back. The
real planner, store (Azurite), workers and Graph emulator run every step.

What must hold after every step (whatever is still pending):
- no two confirmed reservations of one asset overlap, and no Outlook meeting is mirrored twice;
- no platform booking has two live Outlook meetings;
- nothing the model did not cancel is gone: people's own meetings stay, reservation rows never
  vanish, and a platform booking is cancelled only by its booker or because they left;
- reservation events: per reservation one `created`, first; no two consecutive events announce
  the same state (each change is published once); every state the store showed between steps
  was published, in order; when the outbox is empty the last event is the stored state.
After `quiesce` (every notification delivered, queues dry, subscriptions renewed, a final resync):
- each live item of a room's calendar (not cancelled, not declined) is exactly one confirmed
  reservation with its iCalUId and times, and each confirmed reservation is one such item;
- each confirmed platform booking is exactly one meeting in its booker's calendar, tagged with
  its id, at the times of the last change the platform accepted, and synced; a cancelled one has
  none; a declined one was declined by the room (the product keeps such a booking as `declined`,
  and declines the room copy of an Outlook meeting that clashes with a booking: both modelled
  by comparing with what the room's calendar finally holds).
Every example is a fresh tenant, integration and set of queues; after its last step the machine
quiesces and checks the above. Changes go through the workers in process with the ids a
notification carries; the notifications themselves are Graph's real POSTs, checked by
sync/webhook.py. The tests after the machine replay, step by step, what it found.

ROOMSYNC_SOAK_EXAMPLES raises the number of examples (`make soak`); ROOMSYNC_SOAK_STEPS the
steps per example.
"""
from __future__ import annotations

import os
import random
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from sync.booking_model import CANCELLED, CONFIRMED, DECLINED, FROM_PLATFORM, SYNCED
from sync.outbound import RESERVATION_TAG, room_response
from sync.reservation_events import CANCELLED_EVENT, CREATED
from sync.validation import Problem
from tests.support.calendar_client import q
from tests.support.emulator_fixture import start_emulator
from tests.support.notification_fixtures import Control
from tests.support.receiver import NotificationReceiver
from tests.support.sync_model_world import SyncWorld, instant, make_sync_world, sync_world

EXAMPLES = int(os.environ.get("ROOMSYNC_SOAK_EXAMPLES", "4"))
STEPS = int(os.environ.get("ROOMSYNC_SOAK_STEPS", "12"))
PEOPLE, ROOMS = 3, 2
STATS_FILE = os.environ.get("ROOMSYNC_SOAK_STATS")  # where `make soak` reads the counts from

people = st.integers(0, PEOPLE - 1)
rooms = st.integers(0, ROOMS - 1)
days = st.integers(0, 1)
hours = st.integers(8, 10)
lengths = st.sampled_from([30, 60])
slots = st.tuples(days, hours, lengths)
picks = st.integers(0, 15)

# action -> its arguments, main actions first (sampling favours the front of the list)
ACTIONS = {
    "outlook_create": {"what": st.tuples(people, rooms, slots, st.booleans())},
    "platform_create": {"what": st.tuples(people, rooms, slots)},
    "notification": {"pick": picks, "how": st.sampled_from(["deliver", "twice", "drop", "shuffle"])},
    "work": {"kind": st.sampled_from(["booking_queue", "sweeper", "resyncs", "leaver_releases", "renewals"])},
    "outlook_move": {"pick": picks, "slot": slots},
    "outlook_change": {"pick": picks, "change": st.sampled_from(["cancel", "remove_room", "invite_room"])},
    "outlook_occurrence": {"pick": picks, "which": st.integers(0, 2), "shift": st.sampled_from([None, -60, 30, 120])},
    "platform_move": {"pick": picks, "slot": slots},
    "platform_cancel": {"pick": picks},
    "crash": {"kind": st.sampled_from(["message_lost", "after_graph_write"])},
    "graph_fault_burst": {"status": st.sampled_from([429, 503]), "count": st.integers(1, 6)},
    "subscription_trouble": {"room": rooms, "how": st.sampled_from(["removed", "silently_removed", "missed"])},
    "leave_or_return": {"person": people},
}


def tag_of(event: dict) -> str | None:
    props = (event.get("_internal") or {}).get("extendedProperties") or {}
    return next((v for k, v in props.items() if k.lower() == RESERVATION_TAG.id.lower()), None)


def state_of(view: dict) -> dict:
    """What a reservation event announces, without the write's own timestamp."""
    return {**view, "updated_at": None}


class Tally:
    examples = 0
    steps = 0
    rules: Counter = Counter()


class SyncMachine(RuleBasedStateMachine):
    env: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.w: SyncWorld = make_sync_world(self.env["server"], self.env["storage"], self.env["receiver"])
        self.base = (self.w.booking.clock() + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.meetings: dict[str, dict] = {}  # organizer event id -> what the model did to it
        self.bookings: dict[str, dict] = {}  # platform reservation id -> what the model did to it
        self.inactive: set[int] = set()
        self.ever_inactive: set[int] = set()
        self.known: set[str] = set()  # every reservation id the store ever showed
        self.observed: dict[str, list[dict]] = {}  # reservation id -> states seen between steps
        self.crash_next = False
        Tally.examples += 1

    def teardown(self) -> None:
        try:
            if not getattr(self, "failed", False):
                self.quiesce()
        finally:
            self.w.control("DELETE", "faults", params={"tenant": self.w.tenant.tenant_id})
            self.w.close()

    # ---- helpers -------------------------------------------------------------------------------
    def step(self, name: str) -> None:
        Tally.steps += 1
        Tally.rules[name] += 1
        self.w.collect()

    def person(self, index: int):
        return self.w.tenant.users[index]

    def room(self, index: int) -> str:
        return self.w.booking.assets[index].mailbox

    def slot(self, day: int, hour: int, minutes: int):
        start = self.base + timedelta(days=day, hours=hour)
        return start, start + timedelta(minutes=minutes)

    def meeting_call(self, method: str, person: int, *parts: str, body: dict | None = None, ok=(200, 201, 204)):
        answer = self.w.meeting_call(method, self.person(person).mail, *parts, body=body)
        assert answer.status_code in ok, answer.text
        return answer

    def live_meetings(self, **wanted) -> list[str]:
        """Meetings the model may still change, in the order they were made (ids are random, so
        a sorted list would map the same draw to another meeting on a replay)."""
        return [m for m, info in self.meetings.items() if not info["cancelled"]
                and info["person"] not in self.inactive and all(info[k] == v for k, v in wanted.items())]

    def open_bookings(self) -> list[str]:
        return [b for b, info in self.bookings.items() if not info["cancelled"]]

    @staticmethod
    def pick(items: list, index: int):
        return items[index % len(items)] if items else None

    # One rule draws the action, then its arguments. Hypothesis prefers rules with few arguments
    # and the first of equals, which starved the main actions; here the list order is ours, main
    # actions first. Nothing drawn depends on what Graph or the queues hold, so a replay of the
    # same steps draws the same choices: picks are indexes taken modulo the live choices, and an
    # action with nothing to act on does nothing.
    @rule(action=st.sampled_from(list(ACTIONS)), data=st.data())
    def act(self, action, data):
        arguments = {name: data.draw(strategy, label=name) for name, strategy in ACTIONS[action].items()}
        getattr(self, action)(**arguments)

    # ---- Outlook, as the demo people -----------------------------------------------------------
    def outlook_create(self, what):
        person, room, slot, weekly = what
        if person in self.inactive:
            return
        start, end = self.slot(*slot)
        body = {"subject": f"Outlook {len(self.meetings)}", "start": start.isoformat(), "end": end.isoformat(),
                "rooms": [self.room(room)]}
        if weekly:
            body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1,
                                              "daysOfWeek": [start.strftime("%A").lower()]},
                                  "range": {"type": "numbered", "startDate": start.date().isoformat(),
                                            "numberOfOccurrences": 3}}
        made = self.meeting_call("POST", person, body=body).json()["event"]
        self.meetings[made["id"]] = {"person": person, "room": room, "series": weekly, "cancelled": False}
        self.step("outlook_create")

    def outlook_move(self, pick, slot):
        event_id = self.pick(self.live_meetings(series=False), pick)
        if event_id is None:
            return
        start, end = self.slot(*slot)
        self.meeting_call("PATCH", self.meetings[event_id]["person"], q(event_id),
                          body={"start": start.isoformat(), "end": end.isoformat()})
        self.step("outlook_move")

    def outlook_change(self, pick, change):
        """Cancel the meeting, take the room off it, or invite the room (again)."""
        event_id = self.pick(self.live_meetings(), pick)
        if event_id is None:
            return
        info = self.meetings[event_id]
        if change == "cancel":
            self.meeting_call("POST", info["person"], q(event_id), "cancel", body={})
            info["cancelled"] = True
        elif change == "remove_room":
            self.meeting_call("DELETE", info["person"], q(event_id), "rooms", q(self.room(info["room"])),
                              ok=(200, 204, 404))
        else:
            self.meeting_call("POST", info["person"], q(event_id), "rooms", body={"email": self.room(info["room"])},
                              ok=(200, 201, 400, 409))
        self.step(f"outlook_{change}")

    def occurrences(self, event_id: str) -> list[dict]:
        """The series' occurrences as its organizer's Outlook reads them (through the injected
        faults too, so it tries again as Outlook would; each try spends one of a burst's hits)."""
        cal, mailbox = self.w.booking.cal, self.person(self.meetings[event_id]["person"]).mail
        window = {"startDateTime": (self.base - timedelta(days=1)).isoformat(),
                  "endDateTime": (self.base + timedelta(days=30)).isoformat(), "$top": "50"}
        for _ in range(20):
            answer = cal.http.get(cal.item(mailbox, event_id, "instances"), params=window)
            if answer.status_code not in (429, 503):
                break
        assert answer.status_code == 200, answer.text
        return sorted(answer.json()["value"], key=lambda item: item["start"]["dateTime"])

    def outlook_occurrence(self, pick, which, shift):
        """An exception: one occurrence moved by `shift` minutes, or cancelled (None)."""
        event_id = self.pick(self.live_meetings(series=True), pick)
        occurrence = self.pick(self.occurrences(event_id), which) if event_id else None
        if occurrence is None:
            return
        person = self.meetings[event_id]["person"]
        if shift is None:
            self.meeting_call("POST", person, q(event_id), "cancel-occurrence", body={"occurrenceId": occurrence["id"]})
        else:
            moved = timedelta(minutes=shift)
            self.meeting_call("PATCH", person, q(occurrence["id"]), body={
                "start": (instant(occurrence["start"]) + moved).isoformat(),
                "end": (instant(occurrence["end"]) + moved).isoformat()})
        self.step("outlook_cancel_occurrence" if shift is None else "outlook_move_occurrence")

    # ---- the platform --------------------------------------------------------------------------
    def platform_create(self, what):
        person, room, slot = what
        start, _ = self.slot(*slot)
        try:
            view = self.w.booking.service.create(self.w.booking.body(asset=self.w.booking.assets[room], person=person,
                                                                     start=start, minutes=slot[2]))
        except Problem as refused:
            assert refused.status in (409, 422), refused
            assert refused.status == 409 or person in self.inactive, refused
        else:
            assert person not in self.inactive
            self.bookings[view["id"]] = {"person": person, "cancelled": False, "times": self.slot(*slot)}
        self.step("platform_create")

    def platform_move(self, pick, slot):
        reservation_id = self.pick(self.open_bookings(), pick)
        if reservation_id is None:
            return
        start, end = self.slot(*slot)
        try:
            self.w.booking.service.change(reservation_id, {"start": start.isoformat(), "end": end.isoformat()}, None)
        except Problem as refused:
            assert refused.status == 409, refused  # overlap, or no longer confirmed
        else:
            self.bookings[reservation_id]["times"] = (start, end)
        self.step("platform_move")

    def platform_cancel(self, pick):
        reservation_id = self.pick(self.open_bookings(), pick)
        if reservation_id is None:
            return
        self.w.booking.service.cancel(reservation_id, None)
        self.bookings[reservation_id]["cancelled"] = True
        self.step("platform_cancel")

    # ---- notifications -------------------------------------------------------------------------
    def notification(self, pick, how):
        """Deliver one pending change notification, deliver it twice, lose it, or reorder all."""
        pending = self.w.pending
        if not pending:
            return
        index = pick % len(pending)
        if how == "shuffle":
            random.Random(pick).shuffle(pending)
        elif how == "drop":
            pending.pop(index)
        elif how == "twice":
            self.w.handle(pending[index])
            self.w.handle(pending[index])
        else:
            item = pending.pop(index)
            if not self.w.handle(item):
                pending.append(item)  # throttled or deferred: back on the queue
        self.step(f"notification_{how}")

    # ---- workers, crashes and faults -----------------------------------------------------------
    def work(self, kind):
        """One run of a queue worker or timer."""
        if kind == "booking_queue":
            self.w.run_booking_queue()
        elif kind == "sweeper":
            self.w.sweep()
        elif kind == "resyncs":
            self.w.run_resyncs()
        elif kind == "leaver_releases":
            self.w.run_leaver_releases()
        else:
            self.w.renew_all()
        self.step(f"work_{kind}")

    def crash(self, kind):
        """message_lost: the process died between the commit and the enqueue, so the booking
        message never arrives. after_graph_write: the worker died after Graph took its write and
        before the result was stored; its message is gone with it and its lease runs out."""
        if kind == "message_lost":
            client = self.w.booking.queues.get_queue_client(self.w.booking.booking_queue_name)
            for message in self.w.booking.messages()[:1]:
                client.delete_message(message)
        else:
            worker = self.w.booking.worker

            def die(*args, **kwargs):
                raise SystemError("the worker died after Graph's answer")

            worker._finish = die
            try:
                self.w.run_booking_queue()
            except SystemError:
                pass
            finally:
                del worker._finish
            self.w.advance()
        self.step(f"crash_{kind}")

    def graph_fault_burst(self, status, count):
        answer = self.w.control("POST", "faults", json={
            "method": "*", "match": "regex", "path": r"/users/[^/]+/(events|calendar)", "status": status,
            "retry_after": 0.05, "count": count, "tenant": self.w.tenant.tenant_id})
        assert answer.status_code == 201, answer.text
        self.step(f"fault_{status}")

    # ---- subscriptions -------------------------------------------------------------------------
    def subscription_trouble(self, room, how):
        """Graph drops the subscription (with a subscriptionRemoved lifecycle event, or without a
        word: only the renewal finds out), or says it missed notifications."""
        asset = self.w.assets_repo.get_in(self.w.iid, self.w.booking.assets[room].id)
        if asset.subscription.id and how == "missed":
            self.w.control("POST", f"subscriptions/{asset.subscription.id}/lifecycle",
                           json={"lifecycle_event": "missed"})
        elif asset.subscription.id:
            self.w.control("DELETE", f"subscriptions/{asset.subscription.id}",
                           params={"notify": "true"} if how == "removed" else {})
        self.step(f"subscription_{how}")

    # ---- people --------------------------------------------------------------------------------
    def leave_or_return(self, person):
        """The person is disabled in Entra (if active) or enabled again; a user sync follows."""
        if person not in self.inactive and len(self.inactive) == PEOPLE - 1:
            return  # someone must be left to book
        action = "enable" if person in self.inactive else "disable"
        answer = self.w.control("POST", f"tenants/{self.w.tenant.tenant_id}/users/{self.person(person).id}/{action}")
        assert answer.status_code == 200, answer.text
        self.w.user_sync()
        if action == "disable":
            self.inactive.add(person)
            self.ever_inactive.add(person)
        else:
            self.inactive.discard(person)
        self.step(f"person_{action}d")

    # ---- quiescence ----------------------------------------------------------------------------
    def quiesce(self) -> None:
        """Lets every piece of pending work run to its end, then checks the final agreement."""
        w = self.w
        w.control("DELETE", "faults", params={"tenant": w.tenant.tenant_id})  # the storm is over
        for _ in range(12):
            w.collect()
            while w.pending:
                if not w.handle(w.pending.pop(0)):
                    break  # deferred until the platform's meeting is linked: run the queue first
            w.run_leaver_releases()
            w.renew_all()
            w.collect()
            w.run_resyncs()
            self.drain_booking_queue()
            w.collect()
            if w.pending or w.resyncs:
                continue
            applied = 0
            for asset in w.booking.assets:
                applied += w.resync.run(w.iid, asset.id, "final").changes
            w.collect()
            if not applied and not w.pending and not w.booking.open_intents():
                break
        else:
            raise AssertionError(f"no quiescence: pending {w.pending}, intents {w.booking.open_intents()}")
        w.flush_outboxes()
        self.check_always()
        self.check_agreement()

    def drain_booking_queue(self) -> None:
        w = self.w
        for _ in range(30):
            w.sweep()
            ran = w.run_booking_queue()
            left = w.booking.open_intents()
            if not left:
                return
            now = w.booking.clock()
            if not ran and all(i.lease_until and i.lease_until > now for i in left):
                w.advance()  # only a dead worker's lease is in the way
        raise AssertionError(f"intents never done: {w.booking.open_intents()}")

    # ---- invariants ----------------------------------------------------------------------------
    @invariant()
    def always(self):
        try:
            self.check_always()
        except BaseException:
            self.failed = True
            raise

    def check_always(self) -> None:
        w = self.w
        stored = w.reservations()
        by_id = {r.id: r for r in stored}
        # Reservation rows never vanish.
        assert self.known <= set(by_id), f"reservations vanished: {self.known - set(by_id)}"
        self.known |= set(by_id)
        confirmed = [r for r in stored if r.status == CONFIRMED]
        for asset in w.booking.assets:
            mine = sorted((r for r in confirmed if r.asset_id == asset.id), key=lambda r: r.start)
            for before, after in zip(mine, mine[1:]):
                assert before.end <= after.start, f"double booking of {asset.name}: {before.id} and {after.id}"
            icals = Counter(r.ical_uid for r in mine if r.ical_uid)
            assert all(n == 1 for n in icals.values()), f"one meeting mirrored twice: {icals}"
        # A platform booking has at most one live meeting, and only its booker's.
        tags = Counter()
        calendars = {index: w.raw(person.mail) for index, person in enumerate(w.tenant.users)}
        for index, person in enumerate(w.tenant.users):
            for event in calendars[index]:
                tag = tag_of(event)
                if tag and not event.get("isCancelled") and event.get("isOrganizer"):
                    tags[tag] += 1
                    assert tag in by_id, f"a meeting for an unknown reservation {tag}"
                    assert by_id[tag].organizer.email == person.mail.lower(), "meeting in another person's calendar"
                if event.get("isOrganizer") and event["id"] in self.meetings and not self.meetings[event["id"]]["cancelled"]:
                    assert not event.get("isCancelled"), f"a person's meeting was cancelled by us: {event['id']}"
        assert all(n == 1 for n in tags.values()), f"a booking has two Outlook meetings: {tags}"
        for meeting_id, info in self.meetings.items():
            if not info["cancelled"]:
                ids = {e["id"] for e in calendars[info["person"]]}
                assert meeting_id in ids, f"a person's meeting was deleted: {meeting_id}"
        # A platform booking is cancelled only by its booker or because they left.
        for reservation_id, info in self.bookings.items():
            current = by_id[reservation_id]
            if current.status == CANCELLED:
                assert info["cancelled"] or info["person"] in self.ever_inactive, \
                    f"platform booking {reservation_id} cancelled by nobody: {current.sync_reason}"
        self.check_events(by_id)

    def check_events(self, by_id: dict) -> None:
        w = self.w
        published = [e for e in w.read_events().values() if e["reservation"]["integration_id"] == w.iid]
        stream: dict[str, list[dict]] = {}
        for event in sorted(published, key=lambda e: e["at"]):
            stream.setdefault(event["reservation"]["id"], []).append(event)
        empty = {asset.id: w.outbox_empty(asset.id) for asset in w.booking.assets}
        for reservation_id, current in by_id.items():
            states = self.observed.setdefault(reservation_id, [])
            if not states or states[-1] != state_of(current.view()):
                states.append(state_of(current.view()))
            events = stream.get(reservation_id, [])
            if not empty[current.asset_id]:
                continue
            kinds = [e["type"] for e in events]
            assert kinds and kinds[0] == CREATED and kinds.count(CREATED) == 1, f"{reservation_id}: {kinds}"
            assert kinds.count(CANCELLED_EVENT) == (1 if current.status == CANCELLED else 0), \
                f"{reservation_id} is {current.status}: {kinds}"
            announced = [state_of(e["reservation"]) for e in events]
            for before, after in zip(announced, announced[1:]):
                assert before != after, f"{reservation_id}: one change published twice"
            assert announced[-1] == state_of(current.view()), f"{reservation_id}: the last event is not the stored state"
            position = 0
            for state in states:
                while position < len(announced) and announced[position] != state:
                    position += 1
                assert position < len(announced), f"{reservation_id}: a stored change was never published: {state}"

    def check_agreement(self) -> None:
        """After quiescence: each room's calendar and the asset's confirmed reservations agree,
        and each platform booking and its booker's meeting agree."""
        w = self.w
        stored = w.reservations()
        for asset in w.booking.assets:
            live = Counter((item["iCalUId"], instant(item["start"]), instant(item["end"]))
                           for item in w.room_view(asset.mailbox)
                           if not item.get("isCancelled") and item.get("type") != "seriesMaster"
                           and (item.get("responseStatus") or {}).get("response") != "declined")
            held = Counter((r.ical_uid, r.start, r.end) for r in stored
                           if r.asset_id == asset.id and r.status == CONFIRMED)
            assert held == live, (f"{asset.name}: room calendar and reservations differ\n"
                                  f"only in Outlook: {live - held}\nonly on the platform: {held - live}")
        for reservation in stored:
            if reservation.origin != FROM_PLATFORM:
                continue
            meetings = [e for e in w.raw(reservation.organizer.email)
                        if tag_of(e) == reservation.id and e.get("isOrganizer") and not e.get("isCancelled")]
            if reservation.status == CONFIRMED:
                assert reservation.sync_status == SYNCED, reservation
                # The booker's last accepted change stands (no older Outlook state won over it).
                assert (reservation.start, reservation.end) == self.bookings[reservation.id]["times"], reservation
                assert [m["id"] for m in meetings] == [reservation.organizer_event_id], (reservation, meetings)
                (meeting,) = meetings
                assert (instant(meeting["start"]), instant(meeting["end"])) == (reservation.start, reservation.end)
                mailbox = next(a.mailbox for a in w.booking.assets if a.id == reservation.asset_id)
                assert room_response(meeting, mailbox) == "accepted", (reservation, meeting)
            elif reservation.status == CANCELLED:
                assert meetings == [], f"cancelled booking {reservation.id} still has its meeting"
            else:
                assert reservation.status == DECLINED and "declined" in (reservation.sync_reason or "")


@pytest.fixture(scope="module")
def soak_emulator(tmp_path_factory):
    """An emulator of its own: the machine moves its clock and sets fast delivery."""
    with start_emulator(cert_dir=str(tmp_path_factory.mktemp("sync-machine-tls"))) as server:
        control = Control(server)
        control.reset()
        control.settings(batch_window_seconds=0.02)
        yield server


def test_the_sync_converges_whatever_happens(soak_emulator, storage_connection_string):
    with NotificationReceiver() as receiver:
        SyncMachine.env = {"server": soak_emulator, "storage": storage_connection_string, "receiver": receiver}
        Tally.examples, Tally.steps, Tally.rules = 0, 0, Counter()
        try:
            run_state_machine_as_test(SyncMachine, settings=settings(
                max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=False,
                suppress_health_check=list(HealthCheck)))
        finally:
            summary = (f"sync state machine: {Tally.examples} examples, {Tally.steps} steps; "
                       + ", ".join(f"{name} {n}" for name, n in sorted(Tally.rules.items())))
            print(summary)
            if STATS_FILE:
                with open(STATS_FILE, "a", encoding="utf-8") as out:
                    out.write(summary + "\n")


def test_a_booking_moved_after_a_crash_is_not_booked_twice_through_its_own_old_meeting(soak_emulator,
                                                                                        storage_connection_string):
    """Found by the machine: the worker dies after Graph created the meeting and before storing
    its ids, the booking moves, and the room copy's notification (old time, nothing linked to its
    iCalUId yet) must wait for the worker instead of becoming a second, Outlook-made reservation
    that then declines the booking's own meeting at its new time."""
    with sync_world(soak_emulator, storage_connection_string) as w:
        b = w.booking
        start = (b.clock() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
        view = b.service.create(b.body(start=start, minutes=60))

        def die(*args, **kwargs):
            raise SystemError("the worker died after Graph's create")

        b.worker._finish = die
        with pytest.raises(SystemError):
            b.run_queue_once()
        del b.worker._finish
        moved = start - timedelta(hours=2)
        b.service.change(view["id"], {"start": moved.isoformat(), "end": (moved + timedelta(minutes=30)).isoformat()},
                         None)
        w.collect()
        assert w.pending, "the room copy of the meeting made before the crash was notified"
        assert [w.handle(item) for item in w.pending] == [False] * len(w.pending)  # deferred
        assert [r.id for r in w.reservations()] == [view["id"]]

        w.advance()  # the dead worker's lease runs out
        w.sweep()
        b.drain()
        w.collect()
        assert all(w.handle(item) for item in w.pending)
        (only,) = w.reservations()
        assert (only.id, only.status, only.start, only.sync_status) == (view["id"], CONFIRMED, moved, SYNCED)
        live = [e for e in w.room_view(b.assets[0].mailbox) if not e.get("isCancelled")]
        assert [(e["iCalUId"], instant(e["start"])) for e in live] == [(only.ical_uid, moved)]


def test_a_late_notification_of_the_old_meeting_does_not_undo_a_platform_move(soak_emulator,
                                                                               storage_connection_string):
    """Found by the machine: the booking is in Outlook, the booker moves it on the platform, and a
    notification of the room copy (still at the old time: the worker has not pushed the move yet)
    arrives first. It must not move the reservation back, or the worker pushes the old time to
    Outlook and the booker's change is lost without a word."""
    with sync_world(soak_emulator, storage_connection_string) as w:
        b = w.booking
        start = (b.clock() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
        view = b.service.create(b.body(start=start, minutes=30))
        b.drain()
        w.collect()
        assert w.pending, "the room copy of the new meeting was notified"
        moved = start - timedelta(hours=2)
        b.service.change(view["id"], {"start": moved.isoformat(), "end": (moved + timedelta(minutes=30)).isoformat()},
                         None)
        assert all(w.handle(item) for item in w.pending)
        w.pending.clear()
        assert b.reservation(view["id"]).start == moved

        b.drain()
        w.collect()
        assert all(w.handle(item) for item in w.pending)
        stored = b.reservation(view["id"])
        assert (stored.start, stored.status, stored.sync_status) == (moved, CONFIRMED, SYNCED)
        (meeting,) = [e for e in b.booker_events() if not e.get("isCancelled")]
        assert instant(meeting["start"]) == moved


def test_a_room_invited_again_after_being_taken_off_is_booked_again(soak_emulator, storage_connection_string):
    """Found by the machine: the organizer takes the room off the meeting (its reservation is
    cancelled), then invites it again; the room accepts a new item of the same meeting, and the
    platform must show the room booked again instead of free while Outlook holds it."""
    with sync_world(soak_emulator, storage_connection_string) as w:
        b, person, room = w.booking, w.tenant.users[0].mail, w.booking.assets[0].mailbox
        start = (b.clock() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)

        def outlook(method: str, *parts: str, body: dict | None = None) -> dict:
            answer = w.meeting_call(method, person, *parts, body=body)
            assert answer.status_code in (200, 201), answer.text
            return answer.json()

        def deliver() -> None:
            w.collect()
            assert all(w.handle(item) for item in w.pending)
            w.pending.clear()

        made = outlook("POST", body={"subject": "Planning", "start": start.isoformat(),
                                     "end": (start + timedelta(minutes=30)).isoformat(), "rooms": [room]})["event"]
        deliver()
        outlook("DELETE", q(made["id"]), "rooms", q(room))
        deliver()
        assert [r.status for r in w.reservations()] == [CANCELLED]
        outlook("POST", q(made["id"]), "rooms", body={"email": room})
        deliver()

        confirmed = [r for r in w.reservations() if r.status == CONFIRMED]
        live = [e for e in w.room_view(room) if not e.get("isCancelled")]
        assert [(r.ical_uid, r.start, r.room_event_id) for r in confirmed] == [
            (e["iCalUId"], instant(e["start"]), e["id"]) for e in live]
