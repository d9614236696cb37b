"""Graph's throttling, as documented for the two services roomsync talks to.

Outlook (throttling-limits, "Outlook service limits"): per app ID + mailbox, at most 4
concurrent requests, 10,000 requests per 10 minutes and 150 MB of uploads (POST/PUT/PATCH
bodies) per 5 minutes; one mailbox over its limit does not affect other mailboxes. Over the
concurrency limit Outlook answers 429 `ApplicationThrottled` "Application is over its
MailboxConcurrency limit." (over the upload budget, "...IncomingBytes limit."); over the
request budget, 429 `TooManyRequests`. Both carry `Retry-After` in seconds, with a fraction
when the window frees up between whole seconds (the throttling page's sample sends `2.128`).
The mailbox is the `{user}` segment of `/users/{user}/events|calendar|calendarView...`,
resolved to the user's id, so an id and the UPN or mail in any letter case count as the same
mailbox.

Identity (users): an optional resource-unit budget per app + tenant (3,500 / 5,000 / 8,000 RU per
10 s by tenant size; `GET users` costs 2, other reads 1, `$select` -1, `$expand` +1, `$top`<20 -1,
minimum 1), with the `x-ms-resource-unit` / `x-ms-throttle-*` headers. Off by default.

Windows are sliding and run on the emulator's clock, so tests move time instead of waiting.
For every (app, mailbox) the module records the highest concurrency ever *asked for* (requests in
flight including the arriving one, admitted or not): clients prove with it that they never send
more than 4 at once. Control API (no auth):

- `GET /_control/throttling` -> `{"enabled", "defaults": {limits}, "tenants": {id: {overrides}}}`
- `PATCH /_control/throttling` `{"enabled": bool, "defaults": {limits...}}` (both optional)
- `PUT /_control/throttling/tenants/{tenant}` `{limits...}` (partial; the rest follow the
  defaults); `DELETE` the same path drops the overrides.
- `GET /_control/throttling/stats[?tenant=&app=&mailbox=]` -> `{"mailboxes": [...], "identity": [...]}`
- `DELETE /_control/throttling/stats[?tenant=]` forgets usage windows and statistics.

Limits (snake_case): `mailbox_concurrency` (4), `mailbox_requests` (10000),
`mailbox_window_seconds` (600), `mailbox_upload_bytes` (157286400),
`mailbox_upload_window_seconds` (300), `concurrency_retry_after` (1), `identity_enabled` (false),
`identity_resource_units` (null = by tenant size), `identity_window_seconds` (10).
"""
from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, EmulatorApp, Handler, json_response, no_content, raw_path
from devtools.graph_emulator.control import body as json_body, find_tenant_or_404
from devtools.graph_emulator.errors import GraphError, bad_request, error_body
from devtools.graph_emulator.identity import bearer_token, verify_token
from devtools.graph_emulator.state import AppRegistration, Tenant, World

SERVICE = "throttling"

# A fault's "slow answer" is stored here by the fault guard and spent by the throttling guard
# *inside* the mailbox's concurrency slot: a slow Outlook request is a request in flight.
PROCESSING_DELAY_KEY = "graph_emulator.processing_delay_seconds"

# Outlook resources under a mailbox (events, calendars, messages, settings, scheduling).
_MAILBOX_PATH = re.compile(
    r"^/(?:v1\.0|beta)/users/(?P<user>[^/?]+)/(?:events|calendar|calendars|calendarview|calendargroups|"
    r"messages|mailfolders|mailboxsettings|findmeetingtimes|contacts|contactfolders|outlook|"
    r"inferenceclassification)(?:[/?(]|$)",
    re.IGNORECASE,
)
_DIRECTORY_PATH = re.compile(
    r"^/(?:v1\.0|beta)/(?P<collection>users|groups|directoryobjects|organization|serviceprincipals|"
    r"applications|devices|contacts)(?P<rest>/[^?]*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Limits:
    mailbox_concurrency: int = 4
    mailbox_requests: int = 10_000
    mailbox_window_seconds: float = 600.0
    mailbox_upload_bytes: int = 150 * 1024 * 1024
    mailbox_upload_window_seconds: float = 300.0
    concurrency_retry_after: int = 1
    identity_enabled: bool = False
    identity_resource_units: int | None = None
    identity_window_seconds: float = 10.0

    @staticmethod
    def check(values: Any) -> dict[str, Any]:
        """Validates a partial limits object from the control API."""
        if not isinstance(values, dict):
            raise bad_request("Limits must be a JSON object.")
        known = {f.name for f in fields(Limits)}
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise bad_request(f"Unknown throttling limit '{name}'. Known: {', '.join(sorted(known))}.")
            if name == "identity_enabled":
                if not isinstance(value, bool):
                    raise bad_request("identity_enabled must be true or false.")
                clean[name] = value
            elif name == "identity_resource_units" and value is None:
                clean[name] = None
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise bad_request(f"{name} must be a positive number.")
            elif name.endswith("_seconds"):
                clean[name] = float(value)
            elif value != int(value):
                raise bad_request(f"{name} must be a whole number.")
            else:
                clean[name] = int(value)
        return clean


@dataclass
class MailboxUsage:
    addressed_as: str
    in_flight: int = 0
    max_concurrency: int = 0
    requests: int = 0
    throttled_concurrency: int = 0
    throttled_rate: int = 0
    throttled_upload: int = 0
    window: deque = field(default_factory=deque)  # emulator timestamps of admitted requests
    uploads: deque = field(default_factory=deque)  # (emulator timestamp, body bytes) of admitted writes


@dataclass
class IdentityUsage:
    requests: int = 0
    throttled: int = 0
    resource_units: int = 0
    window: deque = field(default_factory=deque)  # (emulator timestamp, cost)


class Throttler:
    """Limits, per-tenant overrides and usage; one per World (`world.services["throttling"]`)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.lock = threading.Lock()
        self.enabled = True
        self.defaults = Limits()
        self.tenant_overrides: dict[str, dict[str, Any]] = {}
        self.mailboxes: dict[tuple[str, str, str], MailboxUsage] = {}
        self.identity: dict[tuple[str, str], IdentityUsage] = {}

    def limits_for(self, tenant_id: str) -> Limits:
        with self.lock:
            return self.limits_for_locked(tenant_id)

    # ---- Outlook mailboxes -------------------------------------------------------------------

    def admit_mailbox(self, key: tuple[str, str, str], addressed_as: str, limits: Limits,
                      now: float, upload_bytes: int = 0) -> GraphError | None:
        """Admits one request (the caller must `release_mailbox` later) or returns the 429."""
        with self.lock:
            usage = self.mailboxes.setdefault(key, MailboxUsage(addressed_as=addressed_as))
            usage.requests += 1
            usage.max_concurrency = max(usage.max_concurrency, usage.in_flight + 1)
            _prune(usage.window, now - limits.mailbox_window_seconds)
            while usage.uploads and usage.uploads[0][0] <= now - limits.mailbox_upload_window_seconds:
                usage.uploads.popleft()
            if self.enabled:
                if usage.in_flight + 1 > limits.mailbox_concurrency:
                    usage.throttled_concurrency += 1
                    return throttled_error(limits.concurrency_retry_after, code="ApplicationThrottled",
                                           message="Application is over its MailboxConcurrency limit.")
                if len(usage.window) >= limits.mailbox_requests:
                    usage.throttled_rate += 1
                    frees_at = usage.window[len(usage.window) - limits.mailbox_requests] + limits.mailbox_window_seconds
                    return throttled_error(_seconds_until(frees_at, now))
                uploaded = sum(size for _, size in usage.uploads)
                if upload_bytes and uploaded + upload_bytes > limits.mailbox_upload_bytes:
                    usage.throttled_upload += 1
                    frees_at = now
                    for stamp, size in usage.uploads:
                        uploaded -= size
                        frees_at = stamp + limits.mailbox_upload_window_seconds
                        if uploaded + upload_bytes <= limits.mailbox_upload_bytes:
                            break
                    return throttled_error(_seconds_until(frees_at, now), code="ApplicationThrottled",
                                           message="Application is over its IncomingBytes limit.")
            usage.in_flight += 1
            usage.window.append(now)
            if upload_bytes:
                usage.uploads.append((now, upload_bytes))
            return None

    def release_mailbox(self, key: tuple[str, str, str]) -> None:
        with self.lock:
            usage = self.mailboxes.get(key)
            if usage is not None and usage.in_flight > 0:
                usage.in_flight -= 1

    # ---- identity resource units -------------------------------------------------------------

    def charge_identity(self, tenant: Tenant, app: AppRegistration, cost: int, limits: Limits,
                        now: float) -> tuple[GraphError | None, float | None]:
        """Charges `cost` RU; returns (429 or None, usage fraction of the budget or None)."""
        if not (self.enabled and limits.identity_enabled):
            return None, None
        if limits.identity_resource_units:
            budget = limits.identity_resource_units
        else:
            with self.world.lock:
                budget = _budget_by_size(tenant)
        with self.lock:
            usage = self.identity.setdefault((tenant.id, app.client_id), IdentityUsage())
            usage.requests += 1
            while usage.window and usage.window[0][0] <= now - limits.identity_window_seconds:
                usage.window.popleft()
            used = sum(c for _, c in usage.window)
            if used + cost > budget:
                usage.throttled += 1
                freed, frees_at = used, now
                for stamp, spent in usage.window:
                    freed -= spent
                    frees_at = stamp + limits.identity_window_seconds
                    if freed + cost <= budget:
                        break
                error = throttled_error(_seconds_until(frees_at, now), headers={
                    "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{app.client_id}/{tenant.id}",
                    "x-ms-throttle-information": "ResourceUnitLimitExceeded",
                })
                return error, None
            usage.window.append((now, cost))
            usage.resource_units += cost
            return None, (used + cost) / budget

    # ---- control views -----------------------------------------------------------------------

    def settings_view(self) -> dict[str, Any]:
        with self.lock:
            return {"enabled": self.enabled, "defaults": asdict(self.defaults),
                    "tenants": {tid: dict(values) for tid, values in self.tenant_overrides.items()}}

    def stats_view(self, tenant_id: str | None, app_id: str | None, mailbox: str | None) -> dict[str, Any]:
        now = self.world.clock.now().timestamp()
        with self.lock:
            mailboxes = []
            for (tid, aid, mid), usage in self.mailboxes.items():
                if (tenant_id and tid != tenant_id) or (app_id and aid != app_id) or (mailbox and mid != mailbox):
                    continue
                limits = self.limits_for_locked(tid)
                mailboxes.append({
                    "tenant": tid, "app": aid, "mailbox": mid, "addressed_as": usage.addressed_as,
                    "in_flight": usage.in_flight, "max_concurrency": usage.max_concurrency,
                    "requests": usage.requests,
                    "requests_in_window": sum(1 for stamp in usage.window
                                              if stamp > now - limits.mailbox_window_seconds),
                    "upload_bytes_in_window": sum(size for stamp, size in usage.uploads
                                                  if stamp > now - limits.mailbox_upload_window_seconds),
                    "throttled_concurrency": usage.throttled_concurrency,
                    "throttled_rate": usage.throttled_rate,
                    "throttled_upload": usage.throttled_upload,
                })
            identity = [
                {"tenant": tid, "app": aid, "requests": usage.requests, "throttled": usage.throttled,
                 "resource_units": usage.resource_units}
                for (tid, aid), usage in self.identity.items()
                if not (tenant_id and tid != tenant_id) and not (app_id and aid != app_id)
            ]
        return {"mailboxes": mailboxes, "identity": identity}

    def limits_for_locked(self, tenant_id: str) -> Limits:
        return replace(self.defaults, **self.tenant_overrides.get(tenant_id, {}))

    def reset_stats(self, tenant_id: str | None) -> None:
        """Forgets windows and counters; requests still in flight stay counted so slots balance."""
        with self.lock:
            for (tid, _, _), usage in self.mailboxes.items():
                if tenant_id and tid != tenant_id:
                    continue
                usage.window.clear()
                usage.uploads.clear()
                usage.max_concurrency = usage.in_flight
                usage.requests = usage.throttled_concurrency = usage.throttled_rate = usage.throttled_upload = 0
            for key in [k for k in self.identity if not tenant_id or k[0] == tenant_id]:
                del self.identity[key]


# ---- 429 responses (shared with fault injection) ---------------------------------------------

def throttled_error(retry_after: float | None, code: str = "TooManyRequests",
                    message: str = "Please retry again later.", headers: dict[str, str] | None = None) -> GraphError:
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = format_retry_after(retry_after)
    return GraphError(429, code, message, headers=all_headers, inner_code="429")


def too_many_requests(ctx: Ctx, err: GraphError) -> Response:
    """Graph's documented 429 body: innerError also carries code/status "429" and "Please retry after"."""
    body = error_body(err.code, err.message, ctx.request_id, ctx.client_request_id, inner_code="429")
    body["error"]["innerError"].update({"message": "Please retry after", "status": "429"})
    response = json_response(body, status=429, headers=err.headers)
    return response


def format_retry_after(seconds: float) -> str:
    """Delta-seconds as Graph writes them: whole (`10`) or with a fraction (`2.128`, the
    throttling page's sample), rounded up to the millisecond so waiting that long is enough."""
    millis = max(0, math.ceil(round(seconds * 1000, 6)))
    whole, fraction = divmod(millis, 1000)
    return str(whole) if fraction == 0 else f"{whole}.{fraction:03d}".rstrip("0")


def _seconds_until(moment: float, now: float) -> float:
    """The exact wait until a window frees up (so often fractional), at least a millisecond."""
    return max(0.001, moment - now)


def _prune(window: deque, older_than: float) -> None:
    while window and window[0] <= older_than:
        window.popleft()


def _budget_by_size(tenant: Tenant) -> int:
    people = sum(1 for u in tenant.users.values() if u.deleted_at is None)
    return 3500 if people < 50 else 5000 if people <= 500 else 8000


# ---- the guard ---------------------------------------------------------------------------------

def spend_processing_delay(ctx: Ctx) -> None:
    seconds = ctx.request.environ.pop(PROCESSING_DELAY_KEY, None)
    if seconds:
        time.sleep(seconds)


def _mailbox_id(world: World, tenant: Tenant, addressed_as: str) -> str:
    """The mailbox a user segment names: the user's id, so an id, UPN or mail count as one."""
    with world.lock:
        user = tenant.find_user(addressed_as, include_deleted=True)
    return user.id if user is not None else addressed_as.lower()


def _caller(ctx: Ctx) -> tuple[Tenant, AppRegistration] | None:
    token = bearer_token(ctx)
    if token is None:
        return None
    try:
        caller = verify_token(ctx.world, token)
    except GraphError:
        return None  # the handler answers 401 itself
    return caller.tenant, caller.app


def _identity_cost(ctx: Ctx, collection: str, rest: str | None) -> int:
    """Resource units for one directory request (throttling-limits, identity and access)."""
    if ctx.request.method != "GET":
        return 1
    segments = [s for s in (rest or "").split("/") if s]
    is_list = collection.lower() == "users" and (not segments or segments == ["delta"])
    cost = 2 if is_list else 1
    args = {k.lower(): v for k, v in ctx.request.args.items()}
    if "$select" in args:
        cost -= 1
    if "$expand" in args:
        cost += 1
    top = args.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


def throttling_guard(ctx: Ctx, call_next: Handler) -> Response:
    throttler: Throttler = ctx.world.services[SERVICE]
    path = raw_path(ctx.request)
    mailbox_match = _MAILBOX_PATH.match(path)
    directory_match = None if mailbox_match else _DIRECTORY_PATH.match(path)
    caller = _caller(ctx) if (mailbox_match or directory_match) else None
    if caller is None:
        spend_processing_delay(ctx)
        return call_next(ctx)
    tenant, app = caller
    limits = throttler.limits_for(tenant.id)
    now = ctx.world.clock.now().timestamp()

    if mailbox_match:
        addressed_as = unquote(mailbox_match.group("user"))
        key = (tenant.id, app.client_id, _mailbox_id(ctx.world, tenant, addressed_as))
        upload = (ctx.request.content_length or 0) if ctx.request.method in ("POST", "PUT", "PATCH") else 0
        refusal = throttler.admit_mailbox(key, addressed_as, limits, now, upload)
        if refusal is not None:
            ctx.request.environ.pop(PROCESSING_DELAY_KEY, None)
            return too_many_requests(ctx, refusal)
        try:
            spend_processing_delay(ctx)
            return call_next(ctx)
        finally:
            throttler.release_mailbox(key)

    cost = _identity_cost(ctx, directory_match.group("collection"), directory_match.group("rest"))
    refusal, used_fraction = throttler.charge_identity(tenant, app, cost, limits, now)
    if refusal is not None:
        ctx.request.environ.pop(PROCESSING_DELAY_KEY, None)
        response = too_many_requests(ctx, refusal)
    else:
        spend_processing_delay(ctx)
        response = call_next(ctx)
        if used_fraction is not None and used_fraction >= 0.8:
            response.headers["x-ms-throttle-limit-percentage"] = f"{min(used_fraction, 1.8):.1f}"
    response.headers["x-ms-resource-unit"] = str(cost)
    return response


# ---- control API ------------------------------------------------------------------------------

def _resolve_tenant_id(world: World, name: str | None) -> str | None:
    return find_tenant_or_404(world, name).id if name else None


def control_get(ctx: Ctx) -> Response:
    return json_response(ctx.world.services[SERVICE].settings_view())


def control_update(ctx: Ctx) -> Response:
    throttler: Throttler = ctx.world.services[SERVICE]
    body = json_body(ctx)
    unknown = set(body) - {"enabled", "defaults"}
    if unknown:
        raise bad_request(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise bad_request("enabled must be true or false.")
    defaults = Limits.check(body.get("defaults", {}))
    with throttler.lock:
        if "enabled" in body:
            throttler.enabled = body["enabled"]
        throttler.defaults = replace(throttler.defaults, **defaults)
    return json_response(throttler.settings_view())


def control_put_tenant(ctx: Ctx) -> Response:
    throttler: Throttler = ctx.world.services[SERVICE]
    tenant_id = _resolve_tenant_id(ctx.world, ctx.params["tenant"])
    overrides = Limits.check(json_body(ctx))
    with throttler.lock:
        throttler.tenant_overrides[tenant_id] = overrides
    return json_response({"tenant": tenant_id, "limits": asdict(throttler.limits_for(tenant_id))})


def control_delete_tenant(ctx: Ctx) -> Response:
    throttler: Throttler = ctx.world.services[SERVICE]
    tenant_id = _resolve_tenant_id(ctx.world, ctx.params["tenant"])
    with throttler.lock:
        throttler.tenant_overrides.pop(tenant_id, None)
    return no_content()


def control_stats(ctx: Ctx) -> Response:
    args = ctx.request.args
    tenant_id = _resolve_tenant_id(ctx.world, args.get("tenant"))
    mailbox = args.get("mailbox")
    if mailbox and tenant_id:
        mailbox = _mailbox_id(ctx.world, ctx.world.tenants[tenant_id], mailbox)
    return json_response(ctx.world.services[SERVICE].stats_view(tenant_id, args.get("app"), mailbox))


def control_reset_stats(ctx: Ctx) -> Response:
    ctx.world.services[SERVICE].reset_stats(_resolve_tenant_id(ctx.world, ctx.request.args.get("tenant")))
    return no_content()


def register(app: EmulatorApp) -> None:
    app.world.services.setdefault(SERVICE, Throttler(app.world))
    app.add_guard(throttling_guard)
    app.route("/_control/throttling", ["GET"], control_get, name="control.throttling.get")
    app.route("/_control/throttling", ["PATCH"], control_update, name="control.throttling.update")
    app.route("/_control/throttling/tenants/<tenant>", ["PUT"], control_put_tenant,
              name="control.throttling.tenant.put")
    app.route("/_control/throttling/tenants/<tenant>", ["DELETE"], control_delete_tenant,
              name="control.throttling.tenant.delete")
    app.route("/_control/throttling/stats", ["GET"], control_stats, name="control.throttling.stats")
    app.route("/_control/throttling/stats", ["DELETE"], control_reset_stats,
              name="control.throttling.stats.reset")
