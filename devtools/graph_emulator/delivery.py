"""Notification delivery: turns changes on the world's bus into batched POSTs to the
subscribers' notificationUrls, with Graph's documented delivery semantics.

- Changes for the same URL that are pending together leave in one POST `{"value":[...]}`
  (items of different subscriptions may share a POST); the URL's query string is kept.
- Delivered means a 2xx within 3 s. Anything else is retried with exponential back-off, each
  retry with a 10 s timeout, until 4 h (emulator time) after the first attempt; then dropped.
- Endpoints that answer slowly enter the "slow" state (new notifications held back 10 min) or
  the "drop" state (notifications lost); see `endpoint_health`.
- Switches (per tenant or global) duplicate, reorder, delay, drop or pause notifications, and
  force the slow state; lost notifications produce a `missed` lifecycle event.
- Lifecycle notifications use the same outbox but go to lifecycleNotificationUrl and are only
  affected by `pause`.

A dispatcher thread starts on first use and stops with the server (`world.services["on_stop"]`).
Network I/O never happens while holding `world.lock`.
"""
from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from devtools.graph_emulator import outbound
from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.delivery_log import LogEntry, delivery_log
from devtools.graph_emulator.endpoint_health import DROP, SLOW, HealthBoard
from devtools.graph_emulator.notification_settings import notification_settings, switch_board
from devtools.graph_emulator.payloads import change_notification, describe, lifecycle_notification
from devtools.graph_emulator.state import Change, World, new_guid
from devtools.graph_emulator.subscription_model import AREA, Subscription

log = logging.getLogger("graph_emulator.delivery")

SERVICE = "delivery"
NOTIFICATION, LIFECYCLE = "notification", "lifecycle"
TICK_SECONDS = 0.02
REAUTHORIZATION_SCAN_SECONDS = 0.25


@dataclass
class Pending:
    """One notification item waiting in the outbox (or being retried)."""
    id: str
    tenant_id: str
    subscription_id: str
    url: str
    kind: str
    item: dict
    due_at: datetime
    seq: int
    attempts: int = 0
    first_attempt_at: datetime | None = None


class DeliveryService:
    def __init__(self, world: World) -> None:
        self.world = world
        self.pending: list[Pending] = []
        self.in_flight: dict[str, list[Pending]] = {}
        self.health = HealthBoard()
        self.random = random.Random()
        self._seq = itertools.count(1)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_scan = 0.0
        self._stopped = False

    # ---- lifecycle of the dispatcher --------------------------------------------------------------

    def ensure_running(self) -> None:
        if self._stopped:
            return
        with self._start_lock:
            if self._stopped or (self._thread is not None and self._thread.is_alive()):
                return
            self._stopping.clear()
            self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="graph-delivery-post")
            self._thread = threading.Thread(target=self._run, name="graph-delivery", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stops the dispatcher (server shutdown); queued items stay queued."""
        self._stopped = True
        self._stopping.set()
        self._wake.set()
        with self._start_lock:
            thread, executor = self._thread, self._executor
            self._thread = self._executor = None
        # Joined outside the start lock: a publisher holding the world lock may be waiting on it.
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def resume(self) -> None:
        """Allows the dispatcher to start again (a new server around the same world)."""
        self._stopped = False

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one bad item must not stop delivery for everyone
                log.exception("delivery tick failed")

    # ---- intake ---------------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Bus listener: queues a notification for every live subscription watching the change."""
        world = self.world
        queued = False
        with world.lock:
            tenant = world.tenants.get(change.tenant_id)
            store = tenant.areas.get(AREA) if tenant else None
            if store is None:
                return
            now = world.clock.now()
            user_id = change.user_id
            if user_id:
                user = tenant.find_user(user_id, include_deleted=True)
                user_id = user.id if user else user_id
            for sub in store.active(now):
                if sub.watches(change, user_id):
                    self._queue_change(sub, change_notification(sub, change, user_id or change.item_id), now)
                    queued = True
        if queued:
            self.ensure_running()
            self._wake.set()

    def _queue_change(self, sub: Subscription, item: dict, now: datetime) -> None:
        settings = notification_settings(self.world)
        switches = switch_board(self.world).effective(sub.tenant_id)
        due = now + timedelta(seconds=settings.batch_window_seconds + switches.delay_seconds)
        if switches.slow or self.health.state(sub.notification_url, now) == SLOW:
            due += timedelta(seconds=settings.slow_hold_seconds)
        for _ in range(switches.duplicate):
            self.pending.append(Pending(new_guid(), sub.tenant_id, sub.id, sub.notification_url, NOTIFICATION,
                                        dict(item), due, next(self._seq)))

    def queue_lifecycle(self, sub: Subscription, event: str, variant: str | None = None, kick: bool = True) -> bool:
        """Queues a lifecycle event for a subscription that has a lifecycleNotificationUrl and can
        receive that event (users subscriptions get no `missed` or `subscriptionRemoved`)."""
        if not sub.lifecycle_url or not sub.receives_lifecycle_event(event):
            return False
        settings = notification_settings(self.world)
        with self.world.lock:
            due = self.world.clock.now() + timedelta(seconds=settings.batch_window_seconds)
            item = lifecycle_notification(sub, event, variant or settings.lifecycle_variant)
            self.pending.append(Pending(new_guid(), sub.tenant_id, sub.id, sub.lifecycle_url, LIFECYCLE, item,
                                        due, next(self._seq)))
        if kick:
            self.ensure_running()
            self._wake.set()
        return True

    # ---- dispatching ------------------------------------------------------------------------------

    def tick(self) -> None:
        world = self.world
        settings = notification_settings(world)
        board = switch_board(world)
        work: list[tuple[str, list[list[Pending]]]] = []
        with world.lock:
            now = world.clock.now()
            live = self._live_subscriptions(now)
            if time.monotonic() - self._last_scan >= REAUTHORIZATION_SCAN_SECONDS:
                self._last_scan = time.monotonic()
                self._scan_reauthorization(live.values(), now)
            waiting, due_by_url, lost = [], {}, []
            for item in sorted(self.pending, key=lambda p: p.seq):
                if item.due_at > now or item.url in self.in_flight or board.effective(item.tenant_id).pause:
                    waiting.append(item)
                elif item.kind == NOTIFICATION and item.subscription_id not in live:
                    self._log_given_up([item], "discarded", now, "subscription expired or deleted")
                elif item.first_attempt_at and (now - item.first_attempt_at).total_seconds() > settings.retry_window_seconds:
                    self._log_given_up([item], "expired", now, "retry window passed")
                    lost.append(item)
                elif item.kind == NOTIFICATION and item.attempts == 0 and self._should_drop(item, now):
                    self._log_given_up([item], "dropped", now, "dropped by the emulator")
                    lost.append(item)
                else:
                    due_by_url.setdefault(item.url, []).append(item)
            self.pending = waiting
            for url, items in due_by_url.items():
                self.in_flight[url] = items
                work.append((url, self._batches(items, board.effective(items[0].tenant_id).reorder,
                                                settings.max_batch_size)))
            self._report_missed(lost, live)
        for url, batches in work:
            executor = self._executor
            if executor is None:
                with world.lock:
                    self.pending.extend(self.in_flight.pop(url, []))
                continue
            executor.submit(self._send, url, batches)

    def _live_subscriptions(self, now: datetime) -> dict[str, Subscription]:
        live: dict[str, Subscription] = {}
        for tenant in self.world.tenants.values():
            store = tenant.areas.get(AREA)
            if store is not None:
                live.update((sub.id, sub) for sub in store.active(now))
        return live

    def _should_drop(self, item: Pending, now: datetime) -> bool:
        share = switch_board(self.world).effective(item.tenant_id).drop
        if share >= 1.0 or (share > 0 and self.random.random() < share):
            return True
        return self.health.state(item.url, now) == DROP

    @staticmethod
    def _batches(items: list[Pending], reorder: str, size: int) -> list[list[Pending]]:
        size = max(size, 1)
        if reorder == "across":
            return [[item] for item in reversed(items)]
        batches = [items[i:i + size] for i in range(0, len(items), size)]
        if reorder == "within":
            batches = [list(reversed(batch)) for batch in batches]
        return batches

    def _send(self, url: str, batches: list[list[Pending]]) -> None:
        done = 0
        try:
            for batch in batches:
                self._post_batch(url, batch)
                done += 1
        except Exception:  # noqa: BLE001 - keep the items; the next tick tries again
            log.exception("delivery to %s failed unexpectedly", outbound.redact(url))
            with self.world.lock:
                self.pending.extend(p for batch in batches[done:] for p in batch)
        finally:
            with self.world.lock:
                self.in_flight.pop(url, None)
            self._wake.set()

    def _post_batch(self, url: str, batch: list[Pending]) -> None:
        world = self.world
        settings = notification_settings(world)
        retrying = any(p.attempts for p in batch)
        timeout = settings.retry_timeout_seconds if retrying else settings.ack_timeout_seconds
        started_at = world.clock.now()
        body = json.dumps({"value": [p.item for p in batch]}).encode("utf-8")
        attempt = outbound.post(url, body, "application/json; charset=utf-8", timeout, settings)
        with world.lock:
            now = world.clock.now()
            self.health.record(url, now, beyond_ack=attempt.duration > settings.ack_timeout_seconds,
                               beyond_retry=attempt.duration > settings.retry_timeout_seconds, settings=settings)
            for item in batch:
                item.attempts += 1
                item.first_attempt_at = item.first_attempt_at or started_at
            next_at = None
            if not attempt.ok:
                next_at = now + timedelta(seconds=settings.backoff_seconds(max(p.attempts for p in batch)))
                for item in batch:
                    item.due_at = next_at
                self.pending.extend(batch)
            outcome = "delivered" if attempt.ok else (
                "timeout" if attempt.timed_out else ("failed" if attempt.status is not None else "error"))
            delivery_log(world).add(LogEntry(
                time=started_at, tenant_id=batch[0].tenant_id, kind=batch[0].kind, url=outbound.redact(url),
                outcome=outcome, status=attempt.status, duration_ms=round(attempt.duration * 1000),
                attempt=max(p.attempts for p in batch), items=[describe(p.item) for p in batch],
                error=attempt.error, next_attempt_at=next_at,
            ))

    def _log_given_up(self, items: list[Pending], outcome: str, now: datetime, reason: str) -> None:
        for item in items:
            delivery_log(self.world).add(LogEntry(
                time=now, tenant_id=item.tenant_id, kind=item.kind, url=outbound.redact(item.url), outcome=outcome,
                attempt=item.attempts, items=[describe(item.item)], error=reason,
            ))

    def _report_missed(self, lost: list[Pending], live: dict[str, Subscription]) -> None:
        """Lost change notifications surface as one `missed` lifecycle event per subscription."""
        for subscription_id in dict.fromkeys(p.subscription_id for p in lost if p.kind == NOTIFICATION):
            sub = live.get(subscription_id)
            if sub is not None:
                self.queue_lifecycle(sub, "missed", kick=False)

    def _scan_reauthorization(self, subs, now: datetime) -> None:
        """Queues reauthorizationRequired once per expiry when a subscription nears it."""
        notice = notification_settings(self.world).reauthorization_notice_minutes
        if notice <= 0:
            return
        for sub in subs:
            if (sub.lifecycle_url and sub.reauthorization_notice_for != sub.expires_at
                    and sub.expires_at - now <= timedelta(minutes=notice)):
                sub.reauthorization_notice_for = sub.expires_at
                self.queue_lifecycle(sub, "reauthorizationRequired", kick=False)

    # ---- inspection ----------------------------------------------------------------------------

    def counts(self, tenant_id: str | None = None, horizon_seconds: float = 0.0) -> dict[str, int]:
        """Pending items, those due within the horizon (and not paused), and items in flight."""
        with self.world.lock:
            now = self.world.clock.now()
            board = switch_board(self.world)
            mine = [p for p in self.pending if tenant_id is None or p.tenant_id == tenant_id]
            soon = [p for p in mine if (p.due_at - now).total_seconds() <= horizon_seconds
                    and not board.effective(p.tenant_id).pause]
            flying = [p for items in self.in_flight.values() for p in items
                      if tenant_id is None or p.tenant_id == tenant_id]
            return {"pending": len(mine), "dueSoon": len(soon), "inFlight": len(flying)}

    def wait_idle(self, tenant_id: str | None = None, timeout: float = 10.0,
                  horizon_seconds: float | None = None) -> dict[str, int | bool]:
        """Blocks until nothing is in flight and nothing is due within the horizon (by default
        the batch window plus a second), so held-back or backed-off items do not keep it busy."""
        if horizon_seconds is None:
            horizon_seconds = notification_settings(self.world).batch_window_seconds + 1.0
        deadline = time.monotonic() + timeout
        self._wake.set()
        while True:
            counts = self.counts(tenant_id, horizon_seconds)
            idle = counts["dueSoon"] == 0 and counts["inFlight"] == 0
            if idle or time.monotonic() >= deadline:
                return {"idle": idle, **counts}
            time.sleep(0.01)

    def outbox(self, tenant_id: str | None = None) -> list[dict]:
        with self.world.lock:
            items = [p for p in self.pending if tenant_id is None or p.tenant_id == tenant_id]
            return [{"id": p.id, "tenantId": p.tenant_id, "subscriptionId": p.subscription_id, "kind": p.kind,
                     "url": outbound.redact(p.url), "dueDateTime": graph_datetime(p.due_at), "attempts": p.attempts,
                     "item": describe(p.item)} for p in sorted(items, key=lambda p: p.seq)]

    def discard(self, tenant_id: str | None = None) -> int:
        with self.world.lock:
            before = len(self.pending)
            self.pending = [p for p in self.pending if tenant_id is not None and p.tenant_id != tenant_id]
            return before - len(self.pending)


def delivery_service(world: World) -> DeliveryService:
    """The world's delivery service, made (and hooked to the bus and server stop) on first use."""
    def make() -> DeliveryService:
        service = DeliveryService(world)
        world.bus.subscribe(service.on_change)
        world.services.setdefault("on_stop", []).append(service.stop)
        return service
    return world.service(SERVICE, make)


def register(app) -> None:
    """Hooks delivery to the bus and adds the notification control routes."""
    from devtools.graph_emulator import notification_control
    delivery_service(app.world).resume()
    notification_control.register(app)
