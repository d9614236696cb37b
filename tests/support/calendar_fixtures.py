"""Fixtures for the emulator's calendar tests: a calendar client on a fresh tenant, and the
person whose mailbox a test writes to. Test modules import them by name; a module that needs
more people or rooms defines its own `cal`, and `person` then follows it."""
from __future__ import annotations

import pytest

from tests.support.calendar_client import CalendarClient


@pytest.fixture
def cal(make_tenant) -> CalendarClient:
    """A calendar client for a fresh tenant with one person and no rooms."""
    return CalendarClient(make_tenant(users=1))


@pytest.fixture
def person(cal) -> str:
    """The mail address of the tenant's first person."""
    return cal.tenant.users[0].mail
