"""Connecting, changing and removing customer tenants (the "integrations" of the REST API).

Credentials are tried before anything is stored: a token is fetched with them and the
permissions it grants are read. Only then is the integration written, with its secret sealed
to its id, and its first user sync requested. A parked integration (credentials_invalid)
comes back to life when a working secret is saved. Answers never contain the secret.

A tenant and a domain belong to one integration at most: the integration row is written in one
transaction with guard rows for its tenant and each domain (sync.store.integrations_repo), so
of two concurrent connects exactly one succeeds. Claimed domains count only once proven
verified in the tenant (sync.domain_proof); with Organization.Read.All that happens at connect.

Deleting marks the integration `deleting` and queues its purge (sync.purge). From that moment
`require_live_integration` refuses it with 404 everywhere except its status, which reports how
the purge is getting on until the integration is gone.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from graph import GraphError, TokenError, TokenServiceUnavailable
from sync import validation
from sync.credentials import GrantedAccess, GraphAccess, PermissionMissing, secret_expiry_warnings, token_error_code
from sync.live_integrations import live_integration_ids, require_live_integration  # noqa: F401 -- re-exported
from sync.domain_proof import domains_view, optional_permissions_view, prove_domains, read_verified_domains
from sync.model import ACTIVE, CREDENTIALS_INVALID, DELETING, Integration, IntegrationOptions, iso_utc, utc_now
from sync.purge import PurgeRequester
from sync.store.errors import ConflictError
from sync.store.integrations_repo import TENANT_GUARD, GuardTaken, IntegrationsRepo
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo
from sync.users import INITIAL, MANUAL, RESUMED, SyncRequester
from sync.validation import UNSET, Problem

log = logging.getLogger(__name__)


class IntegrationService:
    def __init__(self, *, integrations: IntegrationsRepo, syncstate: SyncStateRepo, users: UsersRepo,
                 access: GraphAccess, requester: SyncRequester, default_max_share: float,
                 purges: PurgeRequester, purge_steps: Sequence[str] = (),
                 clock: Callable[[], datetime] = utc_now,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.integrations = integrations
        self.syncstate = syncstate
        self.users = users
        self.access = access
        self.requester = requester
        self.default_max_share = default_max_share
        self.purges = purges
        self.purge_steps = list(purge_steps)
        self.clock = clock
        self.new_id = new_id

    # ---- create ------------------------------------------------------------------------------

    def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        draft = validation.new_integration(data, now)
        self._refuse_duplicates(draft.tenant_id, draft.domains)
        granted = self._try_credentials(draft.tenant_id, draft.client_id, draft.client_secret)
        integration_id = self.new_id()
        integration = Integration(
            id=integration_id, domains=draft.domains, tenant_id=draft.tenant_id, client_id=draft.client_id,
            sealed_secret=self.access.seal(draft.client_secret, integration_id, tenant_id=draft.tenant_id,
                                           client_id=draft.client_id),
            secret_expires_at=draft.secret_expires_at, status=ACTIVE, status_reason=None, status_changed_at=now,
            mode=granted.mode, granted_roles=tuple(sorted(granted.roles)),
            options=IntegrationOptions.from_dict(draft.options), created_at=now, activated_at=now, updated_at=now)
        integration = replace(integration, domain_proofs=self._organization_proofs(integration))
        try:
            integration = self.integrations.insert(integration)
        except GuardTaken as taken:
            log.warning("connect refused: %s %s already belongs to integration %s", taken.guard_kind, taken.value,
                        taken.owner_id)
            raise _duplicate(taken.guard_kind, taken.value, taken.owner_id) from None
        log.info("integration %s created for tenant %s (%s, domains %s; unproven: %s)", integration.id,
                 integration.tenant_id, integration.mode, ", ".join(integration.domains),
                 ", ".join(integration.unproven_domains) or "none")
        view = integration_view(integration, now)
        view["initial_user_sync"] = self._request_sync(integration.id, INITIAL)
        return view

    def _organization_proofs(self, integration: Integration) -> dict[str, str]:
        """With Organization.Read.All the claimed domains are checked against the tenant's verified
        ones before anything is stored; without it (or if Graph fails now) the first sync proves
        them from the tenant's UPNs."""
        if not integration.granted_roles:
            return {}
        try:
            client = self.access.client_for(integration)
            try:
                verified = read_verified_domains(client, integration.granted_roles)
            finally:
                client.close()
        except (GraphError, TokenError) as error:
            log.warning("tenant %s: the verified domains could not be read now (%s); the first sync proves them",
                        integration.tenant_id, type(error).__name__)
            return {}
        if verified is None:
            return {}
        return prove_domains(integration.domains, verified=verified, upn_domains=(), previous={}, full_read=True)

    def _refuse_duplicates(self, tenant_id: str, domains: tuple[str, ...]) -> None:
        """A quick, friendly check before trying the credentials; the guard rows written with the
        integration are what makes it hold under concurrent connects."""
        for other in self.integrations.list():
            if other.is_deleting and (other.tenant_id == tenant_id or set(domains) & set(other.domains)):
                raise Problem(409, "integration_deleting", f"integration {other.id} of this tenant or domain is "
                              "being deleted; connect again once its deletion has finished",
                              details={"integration_id": other.id})
            if other.tenant_id == tenant_id:
                raise Problem(409, "duplicate_tenant", f"tenant_id: tenant {tenant_id} is already connected "
                              f"(integration {other.id}); change that integration instead", field="tenant_id",
                              details={"integration_id": other.id})
            shared = sorted(set(domains) & set(other.domains))
            if shared:
                raise Problem(409, "duplicate_domain", f"domains: {shared[0]} already belongs to integration "
                              f"{other.id}", field="domains", details={"integration_id": other.id})

    def _try_credentials(self, tenant_id: str, client_id: str, client_secret: str) -> GrantedAccess:
        """The credentials as Entra sees them; every refusal becomes an answer an admin can act on."""
        try:
            return self.access.check(tenant_id, client_id, client_secret)
        except PermissionMissing as error:
            raise Problem(422, "permission_missing", str(error), field="client_id",
                          details={"missing_permissions": error.missing,
                                   "granted_permissions": sorted(error.granted)}) from None
        except TokenServiceUnavailable as error:
            raise Problem(503, "entra_unavailable", f"the credentials could not be checked: {error}") from None
        except TokenError as error:
            field = {"unknown_tenant": "tenant_id", "unknown_application": "client_id"}.get(
                token_error_code(error), "client_secret")
            details: dict[str, Any] = {"hint": error.hint}
            if error.aadsts:
                details["aadsts"] = error.aadsts
            if error.correlation_id:
                details["correlation_id"] = error.correlation_id
            log.info("credentials refused for tenant %s app %s: %s", tenant_id, client_id,
                     f"AADSTS{error.aadsts}" if error.aadsts else type(error).__name__)
            raise Problem(400, token_error_code(error), f"{field}: Entra ID refused the credentials: {error}",
                          field=field, details=details) from None

    def _request_sync(self, integration_id: str, trigger: str, force: bool = False) -> dict[str, Any]:
        """Asks for a run; a queue outage must not undo a stored change (the nightly run covers it)."""
        try:
            return {"run_id": self.requester.request(integration_id, trigger, force=force), "queued": True}
        except Exception as error:  # noqa: BLE001 -- reported in the answer, the change stays
            log.error("could not queue a user sync for integration %s: %s", integration_id, type(error).__name__)
            return {"run_id": None, "queued": False,
                    "message": "the sync could not be queued; the nightly run will pick it up"}

    # ---- read ---------------------------------------------------------------------------------

    def get(self, integration_id: str) -> dict[str, Any]:
        return integration_view(self._load(integration_id), self.clock())

    def list(self) -> list[dict[str, Any]]:
        now = self.clock()
        live = [i for i in self.integrations.list() if not i.is_deleting]
        return [integration_view(i, now) for i in sorted(live, key=lambda i: i.created_at)]

    def status(self, integration_id: str) -> dict[str, Any]:
        integration = self.integrations.get(validation.integration_id(integration_id))
        if integration is None:
            raise Problem(404, "not_found", "no such integration")
        if integration.is_deleting:
            return self._deletion_status(integration)
        now = self.clock()
        state = self.syncstate.get(integration.id)
        summary = self.users.summary(integration.id)
        warnings = secret_expiry_warnings(integration.secret_expires_at, now)
        if state.guard:
            warnings.append({"code": "user_sync_guard", "message": state.guard.get("reason")})
        if integration.unproven_domains:
            warnings.append({"code": "unproven_domains", "domains": list(integration.unproven_domains),
                             "message": "people of these domains are not activated until the domain is proven "
                                        "verified in the tenant (grant Organization.Read.All, or wait for people "
                                        "of the tenant to sign in with it)"})
        return {
            "integration_id": integration.id,
            "status": integration.status,
            "status_reason": integration.status_reason,
            "status_changed_at": iso_utc(integration.status_changed_at),
            "operator_alarm": self.access.operator_alarm(integration),
            "mode": integration.mode,
            "users": {"active": summary.active, "total": summary.total},
            "user_sync": {
                "last_run": state.last_run.as_dict() if state.last_run else None,
                "last_success_at": iso_utc(state.last_success_at),
                "last_error": state.last_error,
                "last_error_at": iso_utc(state.last_error_at),
                "guard": dict(state.guard) if state.guard else None,
                "running": state.is_running(now),
                "delta_link_saved_at": iso_utc(state.delta_link_saved_at),
                "token_error": ({"aadsts": state.token_error_code, "repeats": state.token_error_repeats}
                                if state.token_error_code else None),
            },
            "domains": domains_view(integration),
            "unproven_domains": list(integration.unproven_domains),
            "secret_expires_at": iso_utc(integration.secret_expires_at),
            "warnings": warnings,
        }

    def _deletion_status(self, integration: Integration) -> dict[str, Any]:
        """All a deleting integration still shows: that it is going, and how far the purge got."""
        done = list(integration.purged_steps)
        return {"integration_id": integration.id, "status": DELETING,
                "status_changed_at": iso_utc(integration.status_changed_at),
                "deletion": {"requested_at": iso_utc(integration.deletion_requested_at), "completed_steps": done,
                             "pending_steps": [name for name in self.purge_steps if name not in done]}}

    def _load(self, integration_id: str) -> Integration:
        return require_live_integration(self.integrations, integration_id)

    # ---- change -------------------------------------------------------------------------------

    def update(self, integration_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        patch = validation.integration_patch(data, now)
        integration = self._load(integration_id)
        resume = False
        if patch.client_secret is not None:
            granted = self._try_credentials(integration.tenant_id, integration.client_id, patch.client_secret)
            integration = replace(integration, sealed_secret=self.access.seal(
                                      patch.client_secret, integration.id, tenant_id=integration.tenant_id,
                                      client_id=integration.client_id),
                                  mode=granted.mode, granted_roles=tuple(sorted(granted.roles)),
                                  secret_expires_at=None if patch.secret_expires_at is UNSET else patch.secret_expires_at)
            if integration.status == CREDENTIALS_INVALID:
                integration = integration.with_status(ACTIVE, None, now)
                resume = True
        elif patch.secret_expires_at is not UNSET:
            integration = replace(integration, secret_expires_at=patch.secret_expires_at)
        if patch.options is not None:
            merged = {**integration.options.as_dict(), **patch.options}
            integration = replace(integration, options=IntegrationOptions.from_dict(merged))
        integration = replace(integration, updated_at=now)
        try:
            integration = self.integrations.update(integration)
        except ConflictError:
            raise _changed_meanwhile() from None
        log.info("integration %s updated (%s)", integration.id,
                 ", ".join(name for name, given in (("secret", patch.client_secret is not None),
                                                    ("secret expiry", patch.secret_expires_at is not UNSET),
                                                    ("options", patch.options is not None)) if given))
        view = integration_view(integration, now)
        if resume:
            log.info("integration %s resumed with a working secret", integration.id)
            view["resumed_user_sync"] = self._request_sync(integration.id, RESUMED)
        return view

    def request_user_sync(self, integration_id: str, *, force: bool) -> dict[str, Any]:
        integration = self._load(integration_id)
        if not integration.is_active:
            raise Problem(409, integration.status, f"the integration is {integration.status}: "
                          f"{integration.status_reason or 'no reason recorded'}; replace the client secret "
                          "(PATCH client_secret) to resume it", details={"status": integration.status})
        requested = self._request_sync(integration.id, MANUAL, force)
        if not requested["queued"]:
            raise Problem(503, "queue_unavailable", "the sync could not be queued; try again shortly")
        return {"integration_id": integration.id, "run_id": requested["run_id"], "force": force,
                "status_url": f"integrations/{integration.id}/status"}

    def delete(self, integration_id: str) -> dict[str, Any]:
        """Marks the integration deleting (hidden from then on) and queues its purge. Asking again
        while it is deleting answers the same and queues the purge again (a lost message or a
        poisoned purge resumes that way)."""
        now = self.clock()
        for _ in range(3):
            integration = self.integrations.get(validation.integration_id(integration_id))
            if integration is None:
                raise Problem(404, "not_found", "no such integration")
            if integration.is_deleting:
                break
            marked = replace(integration.with_status(DELETING, "deletion requested", now), deletion_requested_at=now)
            try:
                integration = self.integrations.update(marked)
                log.info("integration %s marked deleting (tenant %s)", integration.id, integration.tenant_id)
                break
            except ConflictError:
                continue
        else:
            raise _changed_meanwhile()
        try:
            self.purges.request(integration.id)
            queued = True
        except Exception as error:  # noqa: BLE001 -- the mark stands; DELETE again re-queues
            log.error("could not queue the purge of integration %s: %s", integration.id, type(error).__name__)
            queued = False
        return {"integration_id": integration.id, "status": DELETING, "purge_queued": queued,
                "status_url": f"integrations/{integration.id}/status"}


def _duplicate(kind: str, value: str, owner_id: str | None) -> Problem:
    if kind == TENANT_GUARD:
        return Problem(409, "duplicate_tenant", f"tenant_id: tenant {value} is already connected "
                       f"(integration {owner_id}); change that integration instead", field="tenant_id",
                       details={"integration_id": owner_id})
    return Problem(409, "duplicate_domain", f"domains: {value} already belongs to integration {owner_id}",
                   field="domains", details={"integration_id": owner_id})


def _changed_meanwhile() -> Problem:
    """An ETag-guarded write lost to a concurrent change of the same integration."""
    return Problem(409, "changed_meanwhile", "the integration changed while this request ran; read it again and retry")


# ---- what the API shows -------------------------------------------------------------------------

def integration_view(integration: Integration, now: datetime) -> dict[str, Any]:
    """An integration as the API shows it: everything but the secret."""
    return {
        "id": integration.id,
        "domains": list(integration.domains),
        "domain_proofs": domains_view(integration),
        "unproven_domains": list(integration.unproven_domains),
        "tenant_id": integration.tenant_id,
        "client_id": integration.client_id,
        "client_secret_expires_at": iso_utc(integration.secret_expires_at),
        "status": integration.status,
        "status_reason": integration.status_reason,
        "mode": integration.mode,
        "granted_permissions": list(integration.granted_roles),
        "optional_permissions": optional_permissions_view(integration.granted_roles),
        "options": integration.options.as_dict(),
        "created_at": iso_utc(integration.created_at),
        "activated_at": iso_utc(integration.activated_at),
        "updated_at": iso_utc(integration.updated_at),
        "warnings": secret_expiry_warnings(integration.secret_expires_at, now),
    }
