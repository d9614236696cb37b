"""Re-seals every integration's client secret with the current SECRET_ENCRYPTION_KEY.

Run it after a key rotation (`make reseal-secrets`, or `python -m sync.reseal` with the app's
settings in the environment): values sealed with an old key (SECRET_ENCRYPTION_OLD_KEYS) or in
the first format are opened and sealed again with the current key. Once it reports nothing left
on old keys and nothing unreadable, the old keys can leave the settings.

Each row is rewritten only if nobody changed it since it was read (ETag); a row changed meanwhile
is read again and decided again. A value already sealed with the current key is left alone, so
running it twice changes nothing the second time. The row's `updated_at` is kept: the customer's
integration did not change. It prints counts, never a secret, and exits with 1 while any secret
stays unreadable or unwritten.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, replace
from typing import TextIO

from sync.secret_box import SecretBinding, SecretBox, SecretUnreadable
from sync.store.errors import ConflictError
from sync.store.integrations_repo import IntegrationsRepo

log = logging.getLogger(__name__)

ATTEMPTS_PER_ROW = 3


@dataclass
class ResealReport:
    resealed: int = 0
    already_current: int = 0
    unreadable: int = 0
    gone: int = 0  # deleted while the command ran
    conflicts: int = 0  # still changing after ATTEMPTS_PER_ROW reads

    @property
    def complete(self) -> bool:
        return not (self.unreadable or self.conflicts)

    def summary(self) -> str:
        return (f"re-sealed {self.resealed}, already on the current key {self.already_current}, "
                f"unreadable {self.unreadable}, deleted meanwhile {self.gone}, "
                f"still changing {self.conflicts}")


def reseal_all(integrations: IntegrationsRepo, box: SecretBox) -> ResealReport:
    """Moves every integration's secret to the current key; see the module docstring."""
    report = ResealReport()
    for integration_id in [listed.id for listed in integrations.list()]:  # ids first: rows change below
        outcome = reseal_integration(integrations, box, integration_id)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def reseal_integration(integrations: IntegrationsRepo, box: SecretBox, integration_id: str) -> str:
    """Re-seals one integration's secret; returns the ResealReport field it counts under."""
    for _ in range(ATTEMPTS_PER_ROW):
        integration = integrations.get(integration_id)
        if integration is None:
            return "gone"
        if box.is_current(integration.sealed_secret):
            return "already_current"
        binding = SecretBinding(integration.id, integration.tenant_id, integration.client_id)
        try:
            secret = box.open(integration.sealed_secret, binding)
        except SecretUnreadable as error:
            log.error("integration %s: %s", integration.id, error)
            return "unreadable"
        try:
            integrations.update(replace(integration, sealed_secret=box.seal(secret, binding)))
        except ConflictError:
            continue
        return "resealed"
    log.warning("integration %s kept changing; run the command again", integration_id)
    return "conflicts"


def main(environ=None, *, stream: TextIO | None = None) -> int:
    from sync.redaction import install_log_redaction
    from sync.settings import check_settings_or_exit
    from sync.store.catalog import Store
    from sync.store.connection import storage_credential

    install_log_redaction()
    out = stream or sys.stdout
    settings = check_settings_or_exit(environ)
    box = SecretBox(settings.secret_encryption_key, settings.secret_encryption_old_keys)
    location = settings.storage
    credential = storage_credential(location) if location.uses_identity else None
    store = Store.from_location(location, credential)
    report = reseal_all(IntegrationsRepo(store), box)
    print(f"roomsync: client secrets on key {box.key_id}: {report.summary()}", file=out)
    return 0 if report.complete else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
