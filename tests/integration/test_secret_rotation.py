"""SECRET_ENCRYPTION_KEY rotation against real Azurite and the Graph emulator: an old key still
opens, a missing key is an operator alarm (never a parked customer), and the re-seal command
moves every secret to the current key, idempotently and ETag-guarded."""
from __future__ import annotations

import base64
import io
import os
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devtools.azurite import Azurite
from graph import GraphConfig
from sync.credentials import SECRET_UNREADABLE, GraphAccess
from sync.events_out import QueuePublisher, UserEventPublisher
from sync.integrations import IntegrationService
from sync.model import ACTIVE, USERS_AND_CALENDARS, Integration, IntegrationOptions
from sync.reseal import main, reseal_all, reseal_integration
from sync.secret_box import SecretBinding, SecretBox, SecretUnreadable, key_id_of
from sync.store import StorageLocation, Store, queue_service, table_service
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo
from sync.users import APPLIED, SyncRequest, SyncRequester, UserSync
from tests.support.emulator_fixture import new_tenant

OLD_KEY, NEW_KEY, LOST_KEY = os.urandom(32), os.urandom(32), os.urandom(32)


class App:
    """The integration service and the user sync over one store, with a given key configuration."""

    def __init__(self, server, connection_string: str, unique_name, box: SecretBox) -> None:
        location = StorageLocation(connection_string=connection_string)
        self.store = Store(table_service(location))
        queues = queue_service(location)
        config = GraphConfig(authority_host=server.authority_host, api_base=server.api_base, ca_bundle=server.ca_path)
        self.access = GraphAccess(config, box)
        self.integrations = IntegrationsRepo(self.store)
        requester = SyncRequester(QueuePublisher(queues, unique_name("sync")))
        self.service = IntegrationService(integrations=self.integrations, syncstate=SyncStateRepo(self.store),
                                          users=UsersRepo(self.store), access=self.access, requester=requester,
                                          default_max_share=0.2)
        self.sync = UserSync(integrations=self.integrations, users=UsersRepo(self.store),
                             syncstate=SyncStateRepo(self.store), access=self.access,
                             events=UserEventPublisher(QueuePublisher(queues, unique_name("events"))),
                             default_max_share=0.2, requester=requester)

    def run_sync(self, integration_id: str):
        return self.sync.run(SyncRequest(integration_id, str(uuid.uuid4()), "manual"))


def test_a_lost_key_is_an_operator_alarm_and_an_old_key_still_opens(graph_emulator, storage_connection_string,
                                                                    unique_name):
    tenant = new_tenant(graph_emulator, users=3)
    before = App(graph_emulator, storage_connection_string, unique_name, SecretBox(OLD_KEY))
    created = before.service.create({"domains": [tenant.domain], "tenant_id": tenant.tenant_id,
                                     "client_id": tenant.client_id, "client_secret": tenant.client_secret})
    assert before.service.status(created["id"])["operator_alarm"] is None

    # The key was changed and the old one not listed: the operator's problem, shown as such.
    lost = App(graph_emulator, storage_connection_string, unique_name, SecretBox(NEW_KEY))
    status = lost.service.status(created["id"])
    assert status["operator_alarm"] == SECRET_UNREADABLE and status["status"] == ACTIVE
    with pytest.raises(SecretUnreadable):
        lost.run_sync(created["id"])
    status = lost.service.status(created["id"])
    assert status["status"] == ACTIVE and status["status_reason"] is None  # not parked as credentials_invalid
    assert "SecretUnreadable" in status["user_sync"]["last_error"]
    assert key_id_of(OLD_KEY) in status["user_sync"]["last_error"]
    assert tenant.client_secret not in repr(status)

    # The old key listed in SECRET_ENCRYPTION_OLD_KEYS: everything works again, before re-sealing.
    rotated = App(graph_emulator, storage_connection_string, unique_name, SecretBox(NEW_KEY, [OLD_KEY]))
    assert rotated.service.status(created["id"])["operator_alarm"] is None
    assert rotated.run_sync(created["id"]).outcome == APPLIED

    # Re-sealed, the old key can go.
    assert reseal_integration(rotated.integrations, SecretBox(NEW_KEY, [OLD_KEY]), created["id"]) == "resealed"
    assert lost.service.status(created["id"])["operator_alarm"] is None
    assert lost.run_sync(created["id"]).outcome == APPLIED


# ---- the re-seal command on a store of its own -----------------------------------------------

@pytest.fixture
def own_azurite():
    """A storage account of this test only, so the command's counts cover exactly its rows."""
    with Azurite() as instance:
        yield instance


def _integration(sealed: str, integration_id: str, tenant_id: str, client_id: str) -> Integration:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    return Integration(id=integration_id, domains=(f"{integration_id[:8]}.example.com",), tenant_id=tenant_id,
                       client_id=client_id, sealed_secret=sealed, secret_expires_at=None, status=ACTIVE,
                       status_reason=None, status_changed_at=moment, mode=USERS_AND_CALENDARS, granted_roles=(),
                       options=IntegrationOptions(), created_at=moment, activated_at=moment, updated_at=moment)


def _legacy_seal(key: bytes, plaintext: str, integration_id: str) -> str:
    """The first format (integration id only, no key id), as the code before rotation wrote it."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), f"roomsync/secret/v1|{integration_id}".encode())
    return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def _seed(repo: IntegrationsRepo) -> dict[str, tuple[str, SecretBinding]]:
    """One integration per case; returns id -> (plaintext, binding)."""
    cases = {}
    for case in ("legacy", "old", "current", "lost"):
        integration_id, tenant_id, client_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        binding = SecretBinding(integration_id, tenant_id, client_id)
        plaintext = f"secret-{case}-{uuid.uuid4().hex}"
        sealed = {"legacy": lambda: _legacy_seal(OLD_KEY, plaintext, integration_id),
                  "old": lambda: SecretBox(OLD_KEY).seal(plaintext, binding),
                  "current": lambda: SecretBox(NEW_KEY).seal(plaintext, binding),
                  "lost": lambda: SecretBox(LOST_KEY).seal(plaintext, binding)}[case]()
        repo.insert(_integration(sealed, integration_id, tenant_id, client_id))
        cases[case] = (integration_id, plaintext, binding)
    return cases


def test_reseal_moves_every_readable_secret_to_the_current_key_once(own_azurite):
    repo = IntegrationsRepo(Store(table_service(StorageLocation(connection_string=own_azurite.connection_string))))
    cases = _seed(repo)
    before = {integration_id: repo.get(integration_id) for integration_id, _, _ in cases.values()}
    box = SecretBox(NEW_KEY, [OLD_KEY])

    first = reseal_all(repo, box)
    assert (first.resealed, first.already_current, first.unreadable, first.conflicts) == (2, 1, 1, 0)
    assert not first.complete
    new_only = SecretBox(NEW_KEY)
    for case in ("legacy", "old", "current"):
        integration_id, plaintext, binding = cases[case]
        after = repo.get(integration_id)
        assert new_only.is_current(after.sealed_secret) and new_only.open(after.sealed_secret, binding) == plaintext
        assert after.updated_at == before[integration_id].updated_at  # the customer's row did not "change"
    lost_id = cases["lost"][0]
    assert repo.get(lost_id).sealed_secret == before[lost_id].sealed_secret  # left as it was
    current_id = cases["current"][0]
    assert repo.get(current_id).etag == before[current_id].etag  # not rewritten

    second = reseal_all(repo, box)
    assert (second.resealed, second.already_current, second.unreadable) == (0, 3, 1)


class CompetingRepo(IntegrationsRepo):
    """Someone (an admin replacing the secret) writes the row between our read and our write."""

    def __init__(self, store, competitor) -> None:
        super().__init__(store)
        self.competitor = competitor

    def update(self, integration):
        if self.competitor is not None:
            compete, self.competitor = self.competitor, None
            compete()
        return super().update(integration)


def test_a_row_changed_meanwhile_is_read_again_and_not_overwritten(own_azurite):
    store = Store(table_service(StorageLocation(connection_string=own_azurite.connection_string)))
    plain = IntegrationsRepo(store)
    integration_id, tenant_id, client_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    binding = SecretBinding(integration_id, tenant_id, client_id)
    plain.insert(_integration(SecretBox(OLD_KEY).seal("old-secret", binding), integration_id, tenant_id, client_id))

    def admin_saves_a_new_secret():
        row = plain.get(integration_id)
        plain.update(replace(row, sealed_secret=SecretBox(NEW_KEY).seal("new-secret", binding)))

    outcome = reseal_integration(CompetingRepo(store, admin_saves_a_new_secret), SecretBox(NEW_KEY, [OLD_KEY]),
                                 integration_id)
    assert outcome == "already_current"
    assert SecretBox(NEW_KEY).open(plain.get(integration_id).sealed_secret, binding) == "new-secret"


def test_the_command_prints_counts_never_secrets(own_azurite):
    repo = IntegrationsRepo(Store(table_service(StorageLocation(connection_string=own_azurite.connection_string))))
    cases = _seed(repo)
    environ = {"AzureWebJobsStorage": own_azurite.connection_string, "PUBLIC_BASE_URL": "https://sync.example.com",
               "SECRET_ENCRYPTION_KEY": base64.b64encode(NEW_KEY).decode(),
               "SECRET_ENCRYPTION_OLD_KEYS": base64.b64encode(OLD_KEY).decode()}
    out = io.StringIO()
    assert main(environ, stream=out) == 1  # one secret no configured key opens
    printed = out.getvalue()
    assert "re-sealed 2" in printed and "unreadable 1" in printed and key_id_of(NEW_KEY) in printed
    assert not any(plaintext in printed for _, plaintext, _ in cases.values())
    assert base64.b64encode(NEW_KEY).decode() not in printed

    repo.delete(repo.get(cases["lost"][0]))
    out = io.StringIO()
    assert main(environ, stream=out) == 0
    assert "re-sealed 0" in out.getvalue() and "already on the current key 3" in out.getvalue()
