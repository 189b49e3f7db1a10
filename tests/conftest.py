"""Fixtures: a real PostgreSQL cluster, the real app over httpx's ASGI transport, and factories
that read like the product (``make_org``, ``make_member``, ``make_world``, ``client_for``). Plain
helpers and the data classes behind them are in ``tests/factories.py``; test modules import from
there, never from here."""

from __future__ import annotations

import ast
import gc
import hashlib
import logging
import os
import secrets
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from hypothesis import settings

from portal import clock
from portal.config import load_settings, set_settings
from portal.mail import queue as mail_queue
from tests.factories import PASSWORD_HASH, Client, OrgRef, User, World, build_world, unique
from tests.mail_sink import SmtpSink, cancel_leftover_mail, mail_settings
from tests.pg import TestDatabase

logging.getLogger("httpx").setLevel(logging.WARNING)

# `make fuzz` runs the property-based tests with many more examples (HYPOTHESIS_PROFILE=fuzz).
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# CPython 3.11 before 3.11.8 (gh-106905) keeps the AST constructor's recursion count in global
# state: an ``ast.parse`` that runs while another is building its tree (a garbage-collected asyncio
# task logging its traceback — 3.11's traceback module parses — or another thread) ends in
# "SystemError: AST constructor recursion depth mismatch". pytest parses to rewrite assertions in
# modules imported late (Hypothesis imports its shrinker when a test first fails) and to show a
# failure's source, so a failing race or state-machine test could stop the whole run instead of
# reporting. Parsing with the collector paused runs no Python code mid-tree, so no other parse can
# start inside it.
if (3, 11) <= sys.version_info < (3, 11, 8):
    _parse, _parse_lock = ast.parse, threading.RLock()

    def _parse_with_collector_paused(*args, **kwargs):
        with _parse_lock:
            collecting = gc.isenabled()
            gc.disable()
            try:
                return _parse(*args, **kwargs)
            finally:
                if collecting:
                    gc.enable()

    ast.parse = _parse_with_collector_paused


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
    """The app on a pool of the app role. With ``PORTAL_TEST_PGBOUNCER=1`` (the second pass of
    `make test`) the pool goes through PgBouncer in transaction pooling mode, as a deployment
    behind one would; fixtures that arrange data (``su``) still connect directly."""
    from portal.app import create_app
    from portal.db import engine as db

    bouncer = None
    if os.environ.get("PORTAL_TEST_PGBOUNCER") == "1":
        from tests.pgbouncer import PgBouncer

        bouncer = PgBouncer(database).start()
        db.bind(bouncer.url(), statement_cache_size=0)
    else:
        db.bind(database.app_url)
    await db.start_pool(20)
    application = create_app(manage_pool=False)
    yield application
    await db.close_pool()
    if bouncer is not None:
        bouncer.stop()


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()


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
def make_world(su, make_org, make_member):
    """An org with one person of every role and one object of every kind (``tests.factories.World``);
    ``objects=False``: the people only; ``outsiders=True``: plus the owner of another org and a
    former member."""

    async def make(*, objects: bool = True, outsiders: bool = False) -> World:
        return await build_world(su, make_org, make_member, objects=objects, outsiders=outsiders)

    return make


@pytest.fixture
async def world(make_world) -> World:
    return await make_world()


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
    """Per-table checksums of everything belonging to one org (and the global tables). An API
    token's ``last_used_at`` is left out: bookkeeping, written when a token is presented at all."""

    async def take(org_id: uuid.UUID | None = None) -> dict[str, Any]:
        from portal.db import registry

        registry.load_all()
        where = "WHERE org_id = $1::uuid" if org_id else "WHERE $1::uuid IS NULL"
        parts = [
            f"SELECT '{name}'::text, md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
            f"FROM (SELECT to_jsonb(t) - 'last_used_at' AS r FROM {name} t {where}) x"
            for name in sorted(registry.TENANT_TABLES)
        ] + [
            f"SELECT '{name}'::text, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
            for name in ("organization", "app_user")
        ]
        # one statement (one round trip, one snapshot of the database) for every table
        return dict(tuple(row) for row in await su.fetch(" UNION ALL ".join(parts), org_id))

    return take


@pytest.fixture
async def app_conn(database):
    """A connection as the app role, outside any request (row-level security applies)."""
    conn = await asyncpg.connect(database.app_url)
    yield conn
    await conn.close()


# -- races ----------------------------------------------------------------------------------------


@pytest.fixture
def gate():
    """Holds a members service call (role change, removal, transfer ...) at a named checkpoint
    (``tests.concurrency.CheckpointGate``)."""
    from portal.members import service
    from tests.concurrency import CheckpointGate

    g = CheckpointGate()
    service.checkpoint_hook = g
    yield g
    service.checkpoint_hook = None


# -- mail ---------------------------------------------------------------------------------------


@pytest.fixture
async def smtp_sink(app, database):
    """A real SMTP server on a free port; the portal delivers to it for the test (``mail_queue.drain()``
    runs the outbox worker once)."""
    await cancel_leftover_mail(database)
    sink = SmtpSink().start()
    try:
        with mail_settings(smtp_url=sink.url()):
            yield sink
            await mail_queue.drain()
    finally:
        sink.stop()


@pytest.fixture
async def outbox(app, database, tmp_path):
    """No SMTP_URL: mail goes to ``<data dir>/outbox/*.eml``. Yields that folder."""
    await cancel_leftover_mail(database)
    with mail_settings(smtp_url=None, data_dir=tmp_path):
        yield tmp_path / "outbox"
        await mail_queue.drain()


@pytest.fixture
def make_invite(su):
    """A pending invite written straight to the database; returns (token, invite id)."""

    async def make(org, email: str, role: str = "member", *, created_at: datetime | None = None, ttl: timedelta = timedelta(days=7)):
        token = secrets.token_urlsafe(32)
        created = created_at or datetime.now(timezone.utc)
        invite_id = await su.fetchval(
            """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, last_sent_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $6) RETURNING id""",
            org.id, email.lower(), role, hashlib.sha256(token.encode()).hexdigest(), org.owner.id, created, created + ttl,
        )
        return token, invite_id

    return make
