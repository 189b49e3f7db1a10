"""Distribution readiness (SPEC §15, docs/scaling.md): the schema could be sharded by ``org_id``
(Citus's multi-tenant model) without changing a key. Every tenant table's primary key and every
unique constraint or index include ``org_id``; every foreign key between tenant tables carries
``org_id`` on both sides; no global table points into a tenant table; the global tables are the
declared short list, each named in docs/scaling.md with how it would be placed."""

from __future__ import annotations

from portal.config import ROOT
from portal.db import registry

_COLS = "array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = {rel} AND a.attnum = ANY({keys}))"


async def test_every_tenant_key_includes_org_id(su):
    registry.load_all()
    tenant = set(registry.TENANT_TABLES)
    problems = []
    for name in sorted(tenant):
        pk = await su.fetchval(
            f"SELECT {_COLS.format(rel='con.conrelid', keys='con.conkey')} FROM pg_constraint con "
            "WHERE con.conrelid = $1::regclass AND con.contype = 'p'",
            name,
        )
        if not pk or "org_id" not in pk:
            problems.append(f"{name}: primary key {pk}")
        for index in await su.fetch(
            f"SELECT i.indexrelid::regclass::text AS name, {_COLS.format(rel='i.indrelid', keys='i.indkey')} AS cols "
            "FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique",
            name,
        ):
            if "org_id" not in index["cols"]:
                problems.append(f"{name}: unique index {index['name']} on {index['cols']}")
    for fk in await su.fetch(
        f"""SELECT con.conname, con.conrelid::regclass::text AS src, con.confrelid::regclass::text AS dst,
                   {_COLS.format(rel='con.conrelid', keys='con.conkey')} AS cols,
                   {_COLS.format(rel='con.confrelid', keys='con.confkey')} AS refcols
            FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
            WHERE con.contype = 'f' AND n.nspname = 'public'"""
    ):
        if fk["dst"] in tenant and fk["src"] not in tenant:
            problems.append(f"{fk['conname']}: global table {fk['src']} references tenant table {fk['dst']}")
        elif fk["src"] in tenant and fk["dst"] in tenant and not ("org_id" in fk["cols"] and "org_id" in fk["refcols"]):
            problems.append(f"{fk['conname']}: {fk['src']}{fk['cols']} → {fk['dst']}{fk['refcols']} without org_id")
    assert problems == []


def test_every_global_table_is_placed_in_the_scaling_guide():
    registry.load_all()
    guide = (ROOT / "docs" / "scaling.md").read_text()
    missing = [name for name in registry.GLOBAL_TABLES if f"`{name}`" not in guide]
    assert missing == []


async def test_a_token_hash_two_orgs_hold_is_refused_not_a_500_nor_the_wrong_org(make_org, su, app):
    """Token hashes are unique per org only (so a sharded database need not check across shards).
    A hash found in two orgs names no one token: the call is a 401, for either org, and nothing
    is touched; without the twin the token works again."""
    from tests.factories import Client, add_api_token, bearer

    first, second = await make_org(), await make_org()
    token_id, token = await add_api_token(su, first)
    twin = await su.fetchval(
        """INSERT INTO api_token (org_id, name, prefix, token_hash, role, created_by, created_by_email, expires_at)
           SELECT $1, 'twin', prefix, token_hash, role, $2, $3, expires_at FROM api_token WHERE id = $4 RETURNING id""",
        second.id, second.owner.id, second.owner.email, token_id,
    )
    program = Client(app)
    try:
        for org in (first, second):
            r = await program.get(f"/api/v1/orgs/{org.slug}/members", headers=bearer(token))
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), (r.status_code, r.text)
        assert await su.fetchval("SELECT count(*) FROM api_token WHERE id = ANY($1) AND last_used_at IS NOT NULL", [token_id, twin]) == 0
        await su.execute("DELETE FROM api_token WHERE id = $1", twin)
        assert (await program.get(f"/api/v1/orgs/{first.slug}/members", headers=bearer(token))).status_code == 200
        assert await su.fetchval("SELECT last_used_at IS NOT NULL FROM api_token WHERE id = $1", token_id)
    finally:
        await program.aclose()


async def test_an_invite_hash_two_orgs_hold_is_a_dead_invite(make_org, make_invite, su, client):
    first, second = await make_org(), await make_org()
    token, invite_id = await make_invite(first, "twin@example.test")
    twin = await su.fetchval(
        """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, last_sent_at)
           SELECT $1, email, role, token_hash, $2, created_at, expires_at, last_sent_at FROM invite WHERE id = $3 RETURNING id""",
        second.id, second.owner.id, invite_id,
    )
    r = await client.get(f"/invites/{token}")
    assert r.status_code == 404 and first.name not in r.text and second.name not in r.text
    await su.execute("DELETE FROM invite WHERE id = $1", twin)
    r = await client.get(f"/invites/{token}")
    assert r.status_code == 200 and first.name in r.text


async def test_no_unique_constraint_duplicates_a_primary_key_and_tenant_foreign_keys_use_the_key(su):
    """The (org_id, id) keys replaced UNIQUE (org_id, id) constraints that foreign keys were bound
    to; those are gone (one index fewer per insert), and every foreign key between tenant tables
    is served by the referenced table's primary key."""
    duplicates = await su.fetch(
        """SELECT u.conrelid::regclass::text AS tbl, u.conname FROM pg_constraint u
           JOIN pg_constraint pk ON pk.conrelid = u.conrelid AND pk.contype = 'p'
           WHERE u.connamespace = 'public'::regnamespace AND u.contype = 'u'
             AND (SELECT array_agg(k ORDER BY k) FROM unnest(u.conkey) k) = (SELECT array_agg(k ORDER BY k) FROM unnest(pk.conkey) k)"""
    )
    assert [dict(r) for r in duplicates] == []
    registry.load_all()
    not_by_key = await su.fetch(
        """SELECT f.conrelid::regclass::text AS tbl, f.conname, f.conindid::regclass::text AS via FROM pg_constraint f
           WHERE f.connamespace = 'public'::regnamespace AND f.contype = 'f' AND f.confrelid::regclass::text = ANY($1)
             AND f.conindid <> (SELECT pk.conindid FROM pg_constraint pk WHERE pk.conrelid = f.confrelid AND pk.contype = 'p')""",
        sorted(registry.TENANT_TABLES),
    )
    assert [dict(r) for r in not_by_key] == []
    composite = await su.fetchval(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND array_length(conkey, 1) = 2 AND confrelid::regclass::text = ANY($1)",
        sorted(registry.TENANT_TABLES),
    )
    assert composite >= 10  # still there, re-added as they were


async def test_finished_mail_is_purged_from_both_outboxes(make_org, su, app):
    from datetime import timedelta

    from portal import clock
    from portal.mail import queue

    org = await make_org()
    old = clock.now() - queue.KEEP_FINISHED - timedelta(days=1)
    columns = "id, kind, recipient, subject, status, run_after, created_at, sent_at"
    org_mail = await su.fetchval(
        f"INSERT INTO mail_outbox (org_id, {columns}) VALUES ($1, gen_random_uuid(), 'test', 'a@example.test', 's', 'sent', $2, $2, $2) RETURNING id",
        org.id, old,
    )
    fresh = await su.fetchval(
        f"INSERT INTO mail_outbox (org_id, {columns}) VALUES ($1, gen_random_uuid(), 'test', 'b@example.test', 's', 'sent', now(), now(), now()) RETURNING id",
        org.id,
    )
    account_mail = await su.fetchval(
        f"INSERT INTO account_mail ({columns}) VALUES (gen_random_uuid(), 'test', 'c@example.test', 's', 'dead', $1, $1, NULL) RETURNING id",
        old,
    )
    assert await queue.purge() >= 2
    assert not await su.fetchval("SELECT count(*) FROM mail_outbox WHERE id = $1", org_mail)
    assert not await su.fetchval("SELECT count(*) FROM account_mail WHERE id = $1", account_mail)
    assert await su.fetchval("SELECT count(*) FROM mail_outbox WHERE id = $1", fresh) == 1
