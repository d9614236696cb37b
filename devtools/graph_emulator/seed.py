"""Builds fake tenants: tenants, app registrations with secrets and granted roles, people with
realistic names, and room mailboxes. Used by the control API, the test fixtures, benchmarks and
`--seed demo`. Directory changes go through `users`, so delta and notifications see them.
"""
from __future__ import annotations

import itertools
import random
import secrets as _secrets
import string
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from devtools.graph_emulator import room_lists
from devtools.graph_emulator import users as directory_users
from devtools.graph_emulator.state import (
    AppRegistration, ClientSecret, Room, RoomSettings, Tenant, User, World, new_guid,
)

DEFAULT_ROLES = frozenset({"User.Read.All", "Calendars.ReadWrite", "Place.Read.All"})
SECRET_LIFETIME = timedelta(days=365)

GIVEN_NAMES = ("Adele", "Alex", "Amara", "Bram", "Chen", "Diego", "Elif", "Fatima", "Femke", "Grace",
               "Hiro", "Ines", "Isaiah", "Jonas", "Julia", "Kofi", "Lars", "Lena", "Lucas", "Maya",
               "Megan", "Nadia", "Noah", "Olga", "Omar", "Priya", "Ravi", "Sanne", "Sofia", "Tom",
               "Yara", "Zoe")
SURNAMES = ("Vance", "de Vries", "Jansen", "Okafor", "Wang", "Garcia", "Yilmaz", "Haddad", "Bakker",
            "Smith", "Tanaka", "Moreau", "Mensah", "Berg", "Novak", "Kowalski", "Singh", "Patel",
            "Visser", "Rossi", "Nguyen", "Costa", "Schmidt", "Larsen")
DEPARTMENTS = ("Sales", "Engineering", "Finance", "Marketing", "Operations", "Legal", "HR")
JOB_TITLES = ("Account Manager", "Software Engineer", "Controller", "Designer", "Office Manager",
              "Counsel", "Recruiter", "Product Owner")


# ---- tenants and app registrations ---------------------------------------------------------------

def create_tenant(world: World, domain: str, display_name: str | None = None,
                  tenant_id: str | None = None) -> Tenant:
    """A tenant answering to its GUID and to `domain` (and `<name>.onmicrosoft.com`)."""
    domain = domain.lower()
    with world.lock:
        if world.find_tenant(domain) is not None:
            raise ValueError(f"a tenant already uses the domain {domain}")
        if tenant_id and tenant_id in world.tenants:
            raise ValueError(f"tenant {tenant_id} already exists")
        label = domain.split(".")[0]
        domains = [domain] if domain.endswith(".onmicrosoft.com") else [domain, f"{label}.onmicrosoft.com"]
        tenant = Tenant(id=tenant_id or new_guid(), display_name=display_name or label.capitalize(),
                        domains=domains)
        return world.add_tenant(tenant)


def new_secret_value() -> str:
    """Shaped like Entra secrets (`xxx8Q~...`, 40 characters), including `~`, `.`, `-` and `_`
    so clients that forget to URL-encode them fail here too."""
    alphabet = string.ascii_letters + string.digits + "~.-_"
    head = "".join(_secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + "8Q~" + "".join(_secrets.choice(alphabet) for _ in range(34))


def add_secret(world: World, app: AppRegistration, value: str | None = None,
               expires_at: datetime | None = None, lifetime: timedelta | None = SECRET_LIFETIME) -> ClientSecret:
    """Adds a client secret; without `expires_at` it expires `lifetime` from the emulator's now
    (None lifetime = never)."""
    if expires_at is None and lifetime is not None:
        expires_at = world.clock.now() + lifetime
    value = value or new_secret_value()
    secret = ClientSecret(value=value, expires_at=expires_at, hint=value[:3])
    with world.lock:
        app.secrets.append(secret)
    return secret


def add_app(world: World, tenant: Tenant, client_id: str | None = None, display_name: str = "roomsync",
            roles: frozenset[str] | set[str] | None = None, secret: str | None = None,
            secret_expires_at: datetime | None = None, with_secret: bool = True) -> AppRegistration:
    """An app registration with admin-consented application permissions (`roles`) and, unless
    `with_secret` is false, one secret (`app.secrets[0].value`)."""
    app = AppRegistration(client_id=client_id or new_guid(), display_name=display_name,
                          roles=set(DEFAULT_ROLES if roles is None else roles))
    with world.lock:
        if app.client_id in tenant.apps:
            raise ValueError(f"app {app.client_id} already exists in tenant {tenant.id}")
        tenant.apps[app.client_id] = app
    if with_secret:
        add_secret(world, app, value=secret, expires_at=secret_expires_at)
    return app


# ---- people ----------------------------------------------------------------------------------

def _alias(given: str, surname: str) -> str:
    return (given + "." + surname).lower().replace(" ", "")


def _taken_aliases(tenant: Tenant) -> set[str]:
    return {u.user_principal_name.split("@")[0].lower() for u in tenant.users.values()}


def _free_alias(taken: set[str], alias: str) -> str:
    if alias not in taken:
        return alias
    for n in itertools.count(2):
        if f"{alias}{n}" not in taken:
            return f"{alias}{n}"
    raise AssertionError("unreachable")


def make_user(tenant: Tenant, alias: str | None = None, display_name: str | None = None,
              rng: random.Random | None = None, taken: set[str] | None = None, **attributes) -> User:
    """A person with a realistic name, `alias@<primary domain>` as UPN and mail (a free alias
    unless one is given; `taken` saves rescanning the directory). Extra keyword arguments set
    User attributes (department, account_enabled, time_zone...)."""
    rng = rng or random.Random()
    given = attributes.pop("given_name", None) or rng.choice(GIVEN_NAMES)
    surname = attributes.pop("surname", None) or rng.choice(SURNAMES)
    alias = alias or _free_alias(_taken_aliases(tenant) if taken is None else taken, _alias(given, surname))
    address = f"{alias}@{tenant.domains[0]}"
    values = dict(
        id=new_guid(), user_principal_name=address, mail=address,
        display_name=display_name or f"{given} {surname}", given_name=given, surname=surname,
        job_title=rng.choice(JOB_TITLES), department=rng.choice(DEPARTMENTS),
        office_location=f"{rng.randint(1, 9)}/{rng.randint(100, 999)}",
        business_phones=[f"+31 20 555 {rng.randint(1000, 9999)}"], preferred_language="en-US",
    )
    values.update(attributes)
    return User(**values)


def add_user(world: World, tenant: Tenant, alias: str | None = None, display_name: str | None = None,
             **attributes) -> User:
    with world.lock:
        user = make_user(tenant, alias, display_name, **attributes)
        return directory_users.add_user(world, tenant, user)


def add_users(world: World, tenant: Tenant, count: int, seed: int | None = None, **attributes) -> list[User]:
    """`count` people with generated, unique aliases (`seed` makes the names repeatable)."""
    rng = random.Random(seed)
    made = []
    with world.lock:
        taken = _taken_aliases(tenant)
        for _ in range(count):
            user = make_user(tenant, rng=rng, taken=taken, **dict(attributes))
            taken.add(user.user_principal_name.split("@")[0].lower())
            made.append(directory_users.add_user(world, tenant, user, check_unique=False))
    return made


def seed_many_users(world: World, tenant: Tenant, count: int) -> int:
    """Adds `count` people quickly (benchmarks): numbered aliases, one bulk directory insert."""
    domain = tenant.domains[0]
    start = len(tenant.users)
    batch = []
    for n in range(start, start + count):
        given, surname = GIVEN_NAMES[n % len(GIVEN_NAMES)], SURNAMES[n % len(SURNAMES)]
        address = f"user{n:06d}@{domain}"
        batch.append(User(id=str(uuid.UUID(int=random.getrandbits(128), version=4)),
                          user_principal_name=address, mail=address, display_name=f"{given} {surname} {n}",
                          given_name=given, surname=surname, department=DEPARTMENTS[n % len(DEPARTMENTS)],
                          business_phones=[]))
    return directory_users.add_users_bulk(world, tenant, batch)


# ---- rooms -----------------------------------------------------------------------------------

def add_room(world: World, tenant: Tenant, alias: str, display_name: str | None = None,
             capacity: int | None = 8, building: str | None = None, floor_number: int | None = None,
             time_zone: str = "UTC", settings: RoomSettings | None = None, hidden_from_gal: bool = False,
             booking_type: str = "standard") -> Room:
    """A room mailbox: a directory user (is_room, sign-in blocked like real resource accounts)
    plus the place entry sharing its id and address. Calendar processing defaults to Exchange
    Online's (AutoAccept, organizer name as subject...) unless `settings` says otherwise."""
    email = alias if "@" in alias else f"{alias}@{tenant.domains[0]}"
    name = display_name or alias.split("@")[0].replace("-", " ").replace(".", " ").title()
    user = User(id=new_guid(), user_principal_name=email, mail=email, display_name=name,
                account_enabled=False, is_room=True, time_zone=time_zone, business_phones=[],
                office_location=building)
    room = Room(user_id=user.id, email=email, display_name=name, capacity=capacity, building=building,
                floor_number=floor_number, time_zone=time_zone, booking_type=booking_type,
                hidden_from_gal=hidden_from_gal, settings=replace(settings) if settings else RoomSettings())
    return directory_users.add_room_mailbox(world, tenant, user, room)


# ---- the demo tenant -------------------------------------------------------------------------------

# Fixed, documented demo credentials so the README can show them; only ever valid locally.
DEMO_TENANT_ID = "0d3c5e2a-7b1f-4c8e-9a6d-2f4b8c1e5a70"
DEMO_DOMAIN = "contoso-demo.example"
DEMO_CLIENT_ID = "6a1f2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
DEMO_CLIENT_SECRET = "dem8Q~local-emulator-secret.not-for-production"
DEMO_ROOMS = (
    # alias, name, capacity, building, floor, zone
    ("ams-boardroom", "Amsterdam Boardroom", 12, "Amsterdam HQ", 5, "Europe/Amsterdam"),
    ("ams-focus-1", "Amsterdam Focus 1", 2, "Amsterdam HQ", 2, "Europe/Amsterdam"),
    ("ams-studio", "Amsterdam Studio", 6, "Amsterdam HQ", 3, "Europe/Amsterdam"),
    ("nyc-hudson", "New York Hudson", 10, "New York Office", 21, "America/New_York"),
    ("nyc-huddle", "New York Huddle", 4, "New York Office", 21, "America/New_York"),
)


def seed_demo(world: World, users: int = 20) -> dict[str, str]:
    """One demo tenant: an app registration with the fixed demo credentials (secret valid one
    year), `users` people (the last one disabled), and five rooms in two time zones, with one
    room list per building (`amsterdam-hq-rooms@...`, `new-york-office-rooms@...`)."""
    tenant = create_tenant(world, DEMO_DOMAIN, display_name="Contoso (demo)", tenant_id=DEMO_TENANT_ID)
    add_app(world, tenant, client_id=DEMO_CLIENT_ID, display_name="roomsync (demo)",
            secret=DEMO_CLIENT_SECRET)
    people = add_users(world, tenant, users, seed=2024)
    if people:
        directory_users.disable_user(world, tenant, people[-1].id)
    by_building: dict[str, list[str]] = {}
    for alias, name, capacity, building, floor, zone in DEMO_ROOMS:
        room = add_room(world, tenant, alias, name, capacity=capacity, building=building, floor_number=floor,
                        time_zone=zone)
        by_building.setdefault(building, []).append(room.email)
    with world.lock:
        for building, emails in by_building.items():
            address = f"{building.lower().replace(' ', '-')}-rooms@{DEMO_DOMAIN}"
            room_lists.put_room_list(tenant, address, f"{building} rooms", emails)
    return {
        "GRAPH_TENANT_ID": tenant.id,
        "GRAPH_TENANT_DOMAIN": DEMO_DOMAIN,
        "GRAPH_CLIENT_ID": DEMO_CLIENT_ID,
        "GRAPH_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
