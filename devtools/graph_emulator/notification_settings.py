"""Knobs for subscriptions and notification delivery, and the per-tenant delivery switches.

Defaults follow Graph's documented numbers (GRAPH.md §2): 10 s validation timeout, 2xx within
3 s to count as delivered, 10 s timeout on retries, retries for up to 4 h, a 10-minute hold-back
for "slow" endpoints, 45-minute minimum lifetime. Tests shrink the timing knobs (backoff factor,
timeouts) through the control API instead of waiting.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from devtools.graph_emulator.errors import bad_request
from devtools.graph_emulator.state import World

SETTINGS_SERVICE = "notification_settings"
RESOURCE_FORM_SETTINGS = ("path", "tenant", "key", "random")
SWITCHES_SERVICE = "delivery_switches"
GLOBAL_SCOPE = "*"
REORDER_MODES = ("none", "within", "across")


@dataclass
class NotificationSettings:
    # Deliberate deviation: Graph only calls https URLs. Plain http is accepted for loopback
    # hosts (the local Functions host serves http) while this is on.
    allow_insecure_loopback: bool = True
    # PEM bundle used to verify https receivers (e.g. a test receiver's own CA). None = system CAs.
    delivery_ca: str | None = None
    validation_timeout_seconds: float = 10.0
    ack_timeout_seconds: float = 3.0
    retry_timeout_seconds: float = 10.0
    retry_window_seconds: float = 4 * 3600.0
    # Retry n waits backoff_base * 2**(n-1) seconds (capped), times backoff_factor.
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 1800.0
    backoff_factor: float = 1.0
    # Changes published close together leave in one POST, like Graph's batches.
    batch_window_seconds: float = 0.2
    max_batch_size: int = 100
    # Observed live limit for Outlook resources is 10,070 min (docs say 10,080).
    max_lifetime_minutes_events: int = 10070
    max_lifetime_minutes_users: int = 41760
    min_lifetime_minutes: int = 45
    mailbox_subscription_quota: int = 1000
    user_subscriptions_per_app: int = 100
    user_subscriptions_per_tenant: int = 1000
    list_page_size: int = 100
    # Send reauthorizationRequired this long before expiry (0 turns the automatic event off).
    reauthorization_notice_minutes: float = 60.0
    # "tenantId" (documented) or "organizationId" (payload observed in 2026).
    lifecycle_variant: str = "tenantId"
    # How event notifications spell `resource`, fixed per subscription when it is created:
    # "path", "tenant", "key" (payloads.RESOURCE_FORMS) or "random" (drawn with the seed below).
    resource_form: str = "random"
    resource_form_seed: int = 0
    slow_hold_seconds: float = 600.0
    # Automatic slow/drop states from observed response times (Graph's 10-minute windows).
    auto_health: bool = True
    health_window_seconds: float = 600.0
    health_min_sample: int = 20
    slow_ratio: float = 0.10
    drop_ratio: float = 0.15
    drop_hold_seconds: float = 600.0
    # Seeded generator behind resource_form "random" (not a setting; reseeded when those change).
    form_draw: random.Random = field(default_factory=lambda: random.Random(0), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "form_draw"}

    def update_from_json(self, body: dict[str, Any]) -> None:
        """Accepts snake_case (like the rest of the control API) or camelCase names. All or
        nothing: one bad value leaves every setting as it was."""
        settable = [f for f in fields(self) if f.name != "form_draw"]
        by_camel = {_camel(f.name): f for f in settable}
        changes: dict[str, Any] = {}
        for key, value in body.items():
            spec = by_camel.get(key) or next((f for f in settable if f.name == key), None)
            if spec is None:
                raise bad_request(f"Unknown notification setting '{key}'.")
            changes[spec.name] = _coerce(spec.name, getattr(self, spec.name), value)
        if changes.get("lifecycle_variant", self.lifecycle_variant) not in ("tenantId", "organizationId"):
            raise bad_request("lifecycle_variant must be 'tenantId' or 'organizationId'.")
        if changes.get("resource_form", self.resource_form) not in RESOURCE_FORM_SETTINGS:
            raise bad_request(f"resource_form must be one of {', '.join(RESOURCE_FORM_SETTINGS)}.")
        for name, value in changes.items():
            setattr(self, name, value)
        if "resource_form_seed" in changes or "resource_form" in changes:
            self.form_draw.seed(self.resource_form_seed)

    def backoff_seconds(self, retry_number: int) -> float:
        raw = min(self.backoff_base_seconds * (2 ** max(retry_number - 1, 0)), self.backoff_max_seconds)
        return raw * self.backoff_factor


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _coerce(name: str, current: Any, value: Any) -> Any:
    if value is None:
        if name == "delivery_ca":
            return None
        raise bad_request(f"Setting '{name}' cannot be null.")
    if isinstance(current, bool) or name.startswith("allow_") or name == "auto_health":
        if not isinstance(value, bool):
            raise bad_request(f"Setting '{name}' must be true or false.")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 0:
            raise bad_request(f"Setting '{name}' must be a non-negative integer.")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad_request(f"Setting '{name}' must be a non-negative number.")
        return float(value)
    if not isinstance(value, str):
        raise bad_request(f"Setting '{name}' must be a string.")
    return value


def notification_settings(world: World) -> NotificationSettings:
    """The world's settings, made on first use. `world.services["delivery_ca"]`, when set, is
    honoured as the CA bundle for https receivers."""
    with world.lock:
        settings = world.service(SETTINGS_SERVICE, NotificationSettings)
        if settings.delivery_ca is None and world.services.get("delivery_ca"):
            settings.delivery_ca = world.services["delivery_ca"]
        return settings


# ---- delivery switches (fault shaping per tenant or for all tenants) ---------------------------

@dataclass
class DeliverySwitches:
    """How change notifications are distorted before they leave.

    duplicate: copies of every notification (1 = normal). reorder: "within" reverses each POST's
    items, "across" sends every item in its own POST, newest first. delay_seconds: extra wait
    (emulator time). drop: fraction of notifications silently lost (1.0 = all). slow: force the
    documented "slow" state (10-minute hold-back). pause: keep everything queued.
    """
    duplicate: int = 1
    reorder: str = "none"
    delay_seconds: float = 0.0
    drop: float = 0.0
    slow: bool = False
    pause: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SwitchBoard:
    """Overrides per scope (`*` or a tenant id); a tenant's overrides win over the global ones."""
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def effective(self, tenant_id: str) -> DeliverySwitches:
        merged = dict(self.overrides.get(GLOBAL_SCOPE, {}))
        merged.update(self.overrides.get(tenant_id, {}))
        return DeliverySwitches(**merged)

    def update(self, scope: str, body: dict[str, Any]) -> None:
        by_camel = {_camel(f.name): f.name for f in fields(DeliverySwitches)}
        scoped = dict(self.overrides.get(scope, {}))
        for key, value in body.items():
            if key == "tenant":
                continue
            name = by_camel.get(key) or (key if key in by_camel.values() else None)
            if name is None:
                raise bad_request(f"Unknown delivery switch '{key}'.")
            if value is None:
                scoped.pop(name, None)
                continue
            scoped[name] = _check_switch(name, value)
        self.overrides[scope] = scoped

    def reset(self, scope: str | None) -> None:
        if scope is None:
            self.overrides.clear()
        else:
            self.overrides.pop(scope, None)


def _check_switch(name: str, value: Any) -> Any:
    if name == "duplicate":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
            raise bad_request("duplicate must be an integer from 1 to 20.")
    elif name == "reorder":
        if value not in REORDER_MODES:
            raise bad_request(f"reorder must be one of {', '.join(REORDER_MODES)}.")
    elif name == "delay_seconds":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad_request("delay_seconds must be a non-negative number.")
        value = float(value)
    elif name == "drop":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise bad_request("drop must be a fraction from 0 to 1.")
        value = float(value)
    elif not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false.")
    return value


def switch_board(world: World) -> SwitchBoard:
    return world.service(SWITCHES_SERVICE, SwitchBoard)
