"""Shared helpers for the membership tests (no tests here): an org with one member of every role,
membership ids, the kept member count checked against a real count, a gate that holds a request
at a named point of the members service, and a statement counter."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import pytest

ROLES = ("owner", "billing_admin", "compliance_officer", "member")
NON_OWNER = ("billing_admin", "compliance_officer", "member")


@dataclass
class Crew:
    org: object
    users: dict  # role -> User
    ids: dict  # role -> membership id


async def membership_id(su, org, user):
    return await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, user.id)


async def make_crew(make_org, make_member, su) -> Crew:
    org = await make_org()
    users = {"owner": org.owner}
    for role in NON_OWNER:
        users[role] = await make_member(org, role)
    ids = {role: await membership_id(su, org, user) for role, user in users.items()}
    return Crew(org, users, ids)


async def roles_of(su, org) -> dict:
    rows = await su.fetch("SELECT id, role FROM membership WHERE org_id = $1", org.id)
    return {r["id"]: r["role"] for r in rows}


async def owner_count(su, org) -> int:
    return await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND role = 'owner'", org.id)


async def assert_member_count_exact(su, org, expected: int | None = None) -> None:
    """The org row's kept count equals a real count of its memberships (and ``expected``)."""
    org_id = org if not hasattr(org, "id") else org.id
    kept, counted = await su.fetchrow(
        "SELECT member_count, (SELECT count(*) FROM membership WHERE org_id = $1) FROM organization WHERE id = $1", org_id
    )
    assert kept == counted, f"member_count {kept} but {counted} memberships"
    if expected is not None:
        assert counted == expected, (counted, expected)


async def events(su, org, action: str | None = None) -> list:
    if action:
        return await su.fetch(
            "SELECT * FROM audit_event WHERE org_id = $1 AND action = $2 ORDER BY created_at, id", org.id, action
        )
    return await su.fetch("SELECT * FROM audit_event WHERE org_id = $1 ORDER BY created_at, id", org.id)


@dataclass
class Gate:
    """Holds service calls at named checkpoints until released, or fails them there."""

    waits: dict = field(default_factory=dict)  # name -> (reached, release)
    failures: dict = field(default_factory=dict)  # name -> exception
    also: object = None  # an async callable run at every checkpoint (to act inside the request)

    def hold(self, name: str) -> tuple[asyncio.Event, asyncio.Event]:
        self.waits[name] = (asyncio.Event(), asyncio.Event())
        return self.waits[name]

    def fail(self, name: str, exc: BaseException) -> None:
        self.failures[name] = exc

    async def __call__(self, name: str) -> None:
        if self.also is not None:
            await self.also(name)
        if name in self.failures:
            raise self.failures.pop(name)
        if name in self.waits:
            reached, release = self.waits.pop(name)
            reached.set()
            await release.wait()


@pytest.fixture
def gate():
    from portal.members import service

    g = Gate()
    service.checkpoint_hook = g
    yield g
    service.checkpoint_hook = None


async def wait_until_blocked_on_lock(su, timeout: float = 5.0, count: int = 1, usename: str | None = "portal_app") -> None:
    """Wait until ``count`` backends (of the app role, by default) are waiting for a lock."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        n = await su.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ($1::text IS NULL OR usename = $1)",
            usename,
        )
        if n >= count:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no request is waiting for a lock")
        await asyncio.sleep(0.01)


def visible(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))
