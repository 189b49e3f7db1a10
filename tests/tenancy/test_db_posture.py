"""Defense in depth at the database: the app role, row-level security, privileges, pool hygiene."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from portal.db import privileges, registry


async def test_app_role_is_not_superuser_bypassrls_or_owner(su, database):
    role = await su.fetchrow("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'portal_app'")
    assert dict(role) == {"rolsuper": False, "rolbypassrls": False, "rolcreaterole": False, "rolcreatedb": False}
    owned = await su.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'portal_app'"
    )
    assert owned == 0


async def test_rls_enabled_forced_and_policed_on_every_tenant_table(su):
    registry.load_all()
    unprotected = await su.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'r'
             AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
             AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity
                  OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'))"""
    )
    assert [r["relname"] for r in unprotected] == []
    for name in registry.TENANT_TABLES:
        qual = await su.fetchval(
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = $1::regclass AND polname = 'tenant_isolation'", name
        )
        assert "NULLIF(current_setting('app.org_id'::text, true), ''::text)" in qual, name
    views = await su.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'v'
             AND NOT coalesce(c.reloptions::text[] @> ARRAY['security_invoker=true'], false)"""
    )
    assert views == []


async def test_app_role_privileges_are_exactly_declared(su):
    rows = await su.fetch(
        """SELECT table_name, privilege_type FROM information_schema.role_table_grants
           WHERE grantee = 'portal_app' AND table_schema = 'public'"""
    )
    actual: dict[str, set[str]] = {}
    for r in rows:
        actual.setdefault(r["table_name"], set()).add(r["privilege_type"])
    expected = {k: set(v) for k, v in privileges.expected_privileges().items() if v}
    assert actual == expected
    assert actual["audit_event"] == {"SELECT", "INSERT"}


async def test_no_org_set_means_tenant_tables_read_empty(app_conn, make_org):
    await make_org()
    for name in registry.TENANT_TABLES:
        assert await app_conn.fetchval(f"SELECT count(*) FROM {name}") == 0, name


async def test_cross_org_insert_raises(app_conn, make_org, make_user):
    a, b = await make_org(), await make_org()
    user = await make_user()
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(a.id))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.execute("INSERT INTO membership (org_id, user_id, role) VALUES ($1, $2, 'member')", b.id, user.id)
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(a.id))
        assert await app_conn.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", b.id) == 0
        # and a row of A cannot be moved to B
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.execute("UPDATE membership SET org_id = $1 WHERE org_id = $2", b.id, a.id)


async def test_audit_events_are_append_only_for_the_app_role(app_conn, make_org):
    org = await make_org()
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(org.id))
        await app_conn.execute("INSERT INTO audit_event (org_id, action) VALUES ($1, 'test.event')", org.id)
    for sql in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with app_conn.transaction():
                await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(org.id))
                await app_conn.execute(sql)


async def test_one_owner_per_org_is_enforced_by_the_database(su, make_org, make_member):
    org = await make_org()
    other = await make_member(org, "member")
    with pytest.raises(asyncpg.UniqueViolationError):
        await su.execute("UPDATE membership SET role = 'owner' WHERE org_id = $1 AND user_id = $2", org.id, other.id)


async def test_pool_of_one_sees_only_the_current_request_org(app, database, su, make_org, make_member, make_user):
    """Pool hygiene: one pooled connection serves org A then org B; B's request sees only B, and
    after each request the connection carries no tenant."""
    from portal.db import engine as db
    from tests.factories import Client

    user = await make_user()
    a, b = await make_org(), await make_org()
    await make_member(a, "member", user)
    await make_member(b, "member", user)
    for org in (a, b):
        await su.execute("INSERT INTO agent (org_id, name, model) VALUES ($1, 'agent', 'gpt-4.1')", org.id)
    await db.close_pool()
    engine = db.bind(database.app_url)
    await db.start_pool(1)
    try:
        for org in (a, b, a):
            async with db.transaction(user_id=user.id):
                from portal.tenancy import scope as tenancy

                await tenancy.enter(org.id)
                # No org filter in the statement: row-level security alone keeps the other org out.
                rows = await db.current_connection().fetch("SELECT org_id FROM agent")
                assert {r["org_id"] for r in rows} == {org.id}
            async with engine.pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_setting('app.org_id', true)") in ("", None)
                assert await conn.fetchval("SELECT count(*) FROM membership") == 0
        # The same through HTTP: dashboards of A and B over the single connection.
        from portal.accounts import sessions

        c = Client(app)
        token = await sessions.create(user.id)
        c.http.cookies.set(sessions.COOKIE, token, domain="testserver.local")
        ra = await c.get(f"/orgs/{a.slug}")
        rb = await c.get(f"/orgs/{b.slug}")
        assert a.name in ra.text and b.name not in ra.text.split("<main")[1]
        assert b.name in rb.text and a.name not in rb.text.split("<main")[1]
        await c.aclose()
    finally:
        await db.close_pool()
        db.bind(database.app_url)
        await db.start_pool(20)


async def test_concurrent_transactions_for_different_orgs_never_mix(app, make_org, make_user):
    from portal.db import engine as db
    from portal.tenancy import scope as tenancy

    orgs = [await make_org() for _ in range(6)]

    async def read(org):
        async with db.transaction():
            scope = await tenancy.enter(org.id)
            await asyncio.sleep(0.01)
            rows = await scope.fetch("SELECT org_id FROM membership WHERE org_id = {org} OR true")
            return org.id, {r["org_id"] for r in rows}

    results = await asyncio.gather(*(read(o) for o in orgs * 5))
    for org_id, seen in results:
        assert seen == {org_id}


async def test_only_the_current_org_row_can_be_changed_or_deleted(app_conn, make_org, su):
    a, b = await make_org(), await make_org()
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(a.id))
        assert await app_conn.execute("UPDATE organization SET name = 'pwned' WHERE id = $1", b.id) == "UPDATE 0"
        assert await app_conn.execute("DELETE FROM organization WHERE id = $1", b.id) == "DELETE 0"
        assert await app_conn.execute("UPDATE organization SET name = 'ours' WHERE id = $1", a.id) == "UPDATE 1"
    assert await su.fetchval("SELECT name FROM organization WHERE id = $1", b.id) == b.name
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", b.id) == 1
