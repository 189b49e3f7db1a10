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
