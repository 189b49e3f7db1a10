"""Fixtures: a real PostgreSQL cluster, the real app over httpx's ASGI transport, and factories
that read like the product (``make_org``, ``make_member``, ``client_for``)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from hypothesis import settings

from portal import clock
from portal.config import load_settings, set_settings
from tests.pg import TestDatabase

logging.getLogger("httpx").setLevel(logging.WARNING)

# `make fuzz` runs the property-based tests with many more examples (HYPOTHESIS_PROFILE=fuzz).
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

PASSWORD = "correct-horse-battery-staple"
# Hashing is deliberately slow; factories reuse one hash (cheap parameters, same algorithm).
PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
async def database():
    tdb = TestDatabase()
    await tdb.start()
    tdb.migrate()
    os.environ.update(tdb.env())
    set_settings(load_settings())
    yield tdb
    set_settings(None)
    tdb.stop()


@pytest.fixture(scope="session")
async def su(database):
    """A superuser connection, for arranging fixtures and inspecting the database (bypasses RLS)."""
    conn = await database.cluster.superuser_connect()
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def app(database):
    from portal.app import create_app
    from portal.db import engine as db

    db.bind(database.app_url)
    await db.start_pool(20)
    application = create_app(manage_pool=False)
    yield application
    await db.close_pool()


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()


@dataclass
class User:
    id: uuid.UUID
    email: str
    name: str


@dataclass
class OrgRef:
    id: uuid.UUID
    slug: str
    name: str
    owner: User


_addresses = itertools.count(1)


def _client_address() -> str:
    """A fresh client address per client: never reused within a run (Hypothesis re-seeds
    ``random`` per example, and throttles count per address)."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


class Client:
    """A browser-like client: keeps cookies, sends the CSRF token with every unsafe request."""

    def __init__(self, app, ip: str | None = None, *, base_url: str = "http://testserver"):
        ip = ip or _client_address()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(ip, 50000)),
            base_url=base_url,
            follow_redirects=False,
        )
        self._csrf_session: str | None = None  # the session cookie the CSRF cookie was last fetched under

    @property
    def csrf(self) -> str:
        # `__Host-portal_csrf` when the app's BASE_URL is https
        return self.http.cookies.get("__Host-portal_csrf") or self.http.cookies.get("portal_csrf") or ""

    async def ensure_csrf(self) -> str:
        """The CSRF token for the next unsafe request. The token belongs to the session, so after
        a test put a session cookie in the jar by hand, a page load picks up its token (as a
        browser's would)."""
        session = self.http.cookies.get("portal_session")
        if not self.csrf or session != self._csrf_session:
            await self.http.get("/healthz")
            self._csrf_session = self.http.cookies.get("portal_session")
        return self.csrf

    async def get(self, url: str, **kw) -> httpx.Response:
        return await self.http.get(url, **kw)

    async def post(self, url: str, data: dict | None = None, *, csrf: bool = True, htmx: bool = False, **kw) -> httpx.Response:
        data = dict(data or {})
        if csrf:
            data.setdefault("_csrf_token", await self.ensure_csrf())
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return await self.http.post(url, data=data, headers=headers, **kw)

    async def request(self, method: str, url: str, **kw) -> httpx.Response:
        return await self.http.request(method, url, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def client(app):
    c = Client(app)
    yield c
    await c.aclose()


@pytest.fixture
def make_user(su):
    """An account; its address verified unless ``verified=False`` (as a fresh sign-up would be)."""

    async def make(email: str | None = None, name: str | None = None, *, verified: bool = True) -> User:
        email = (email or f"{unique('user')}@example.test").lower()
        name = name or email.split("@")[0].replace("-", " ").title()
        uid = await su.fetchval(
            """INSERT INTO app_user (email, name, password_hash, email_verified_at)
               VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END) RETURNING id""",
            email, name, PASSWORD_HASH, verified,
        )
        return User(uid, email, name)

    return make


@pytest.fixture
def make_org(su, make_user):
    async def make(owner: User | None = None, slug: str | None = None, name: str | None = None) -> OrgRef:
        owner = owner or await make_user()
        slug = slug or unique("org")
        name = name or slug.replace("-", " ").title()
        org_id = await su.fetchval("INSERT INTO organization (slug, name) VALUES ($1, $2) RETURNING id", slug, name)
        await su.execute("INSERT INTO membership (org_id, user_id, role) VALUES ($1, $2, 'owner')", org_id, owner.id)
        await su.execute("INSERT INTO billing_settings (org_id) VALUES ($1)", org_id)
        return OrgRef(org_id, slug, name, owner)

    return make


@pytest.fixture
def make_member(su, make_user):
    async def make(org: OrgRef, role: str = "member", user: User | None = None) -> User:
        user = user or await make_user()
        await su.execute("INSERT INTO membership (org_id, user_id, role) VALUES ($1, $2, $3)", org.id, user.id, role)
        return user

    return make


@pytest.fixture
async def client_for(app):
    """A client signed in as ``user`` (a real session row, as sign-in would make)."""
    clients: list[Client] = []

    async def make(user: User) -> Client:
        from portal.accounts import sessions

        c = Client(app)
        token = await sessions.create(user.id)
        c.http.cookies.set(sessions.COOKIE, token, domain="testserver.local", path="/")
        await c.ensure_csrf()  # the session's own token
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
def snapshot(su, database):
    """Per-table checksums of everything belonging to one org (and the global tables)."""

    async def take(org_id: uuid.UUID | None = None) -> dict[str, Any]:
        from portal.db import registry

        registry.load_all()
        out: dict[str, Any] = {}
        for name in sorted(registry.TENANT_TABLES):
            where = "WHERE org_id = $1" if org_id else ""
            args = [org_id] if org_id else []
            out[name] = await su.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t {where}", *args
            )
        for name in ("organization", "app_user"):
            out[name] = await su.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
            )
        return out

    return take


def text_of(response: httpx.Response) -> str:
    """The visible text of a page, whitespace collapsed (for asserting on messages)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))
