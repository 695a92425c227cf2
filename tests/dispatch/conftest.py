"""Fixtures for the participation tests: points and the supermarket over the seeded service,
and accounts to earn and spend them."""

from __future__ import annotations

import pytest

from dispatch.accounts import Accounts
from dispatch.points import Points
from dispatch.services import Actor
from dispatch.supermarket import Supermarket

ADMIN = Actor("admin", "admin")
WORKER = Actor("社区工作者", "grid_leader")
COMMUNITY = "610104001001"


@pytest.fixture
def points(service):
    return Points(service)


@pytest.fixture
def market(service):
    return Supermarket(service)


@pytest.fixture
def person(service, monkeypatch):
    """Make an account by name (reporter unless another role is given): its user."""
    monkeypatch.setattr("dispatch.accounts.SCRYPT", {"n": 2**4, "r": 8, "p": 1})
    accounts = Accounts(service.db, service.clock)

    def make(name: str, role: str = "reporter", **extra):
        return accounts.add_user(name, "correct horse", role, **extra)

    return make
