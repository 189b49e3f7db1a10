"""The scoping layer is the only way to tenant tables: a scan of the code base, and the layer's
own refusals."""

from __future__ import annotations

import ast
import re

import pytest

from portal.config import ROOT
from portal.db import registry
from portal.tenancy.scope import ScopeError, TenantScope

# The scoping layer itself and the schema: allowed to name tenant tables directly.
LAYER = {"portal/tenancy/scope.py", "portal/tenancy/context.py", "portal/db/ddl.py", "portal/db/privileges.py"}
QUERY_METHODS = {"select", "objects", "insert", "update", "delete", "count", "exists", "raw", "create_table", "alter"}
EXEMPT_MARK = "unscoped:"  # `# unscoped: <reason>` on the line: an explicit, reasoned exemption


def python_files():
    for path in sorted((ROOT / "portal").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in LAYER:
            yield rel, path.read_text()


def tenant_sql_pattern():
    registry.load_all()
    names = "|".join(sorted(registry.TENANT_TABLES))
    return re.compile(rf"\b(from|join|into|update|table)\s+({names})\b", re.IGNORECASE)


def violations_in(rel: str, source: str) -> list[str]:
    registry.load_all()
    tenant_classes = {t.__name__ for t in registry.TENANT_TABLES.values()}
    sql = tenant_sql_pattern()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        line = lines[node.lineno - 1] if hasattr(node, "lineno") and node.lineno <= len(lines) else ""
        if EXEMPT_MARK in line:
            continue
        # Table.select(...) etc. on a tenant table class
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_METHODS:
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in tenant_classes:
                found.append(f"{rel}:{node.lineno}: {target.id}.{node.func.attr}() outside the scoping layer")
        # raw SQL naming a tenant table must put its org filter through the scope ({org})
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and sql.search(node.value):
            if "{org}" not in node.value:
                found.append(f"{rel}:{node.lineno}: raw SQL on a tenant table without the scope's {{org}} filter")
    return found


def test_no_tenant_table_is_queried_outside_the_scoping_layer():
    found = [v for rel, src in python_files() for v in violations_in(rel, src)]
    assert found == []


def test_the_scan_catches_direct_queries():
    bad = (
        "from portal.db.tables import Membership\n"
        "async def f(conn):\n"
        "    await Membership.select().where(Membership.role == 'owner')\n"
        "    await conn.fetch('SELECT * FROM membership WHERE role = $1', 'owner')\n"
    )
    assert len(violations_in("portal/x.py", bad)) == 2
    assert violations_in("portal/x.py", "q = 'SELECT * FROM membership WHERE org_id = {org}'\n") == []


async def test_scope_refuses_sql_without_its_org_filter(app):
    scope = TenantScope(org_id=__import__("uuid").uuid4())
    for run in (scope.fetch, scope.fetchrow, scope.fetchval, scope.execute):
        with pytest.raises(ScopeError):
            await run("SELECT * FROM membership WHERE role = $1", "owner")


def test_scope_binds_the_org_filter_as_the_last_parameter():
    import uuid

    org = uuid.uuid4()
    sql, params = TenantScope(org)._bind("SELECT 1 FROM membership WHERE org_id = {org} AND role = $1", ("member",))
    assert sql.endswith("org_id = $2::uuid AND role = $1") and params == ["member", org]


def test_no_code_opens_a_second_connection_or_sets_session_level_tenant():
    bad = re.compile(r"\.batch\(|run_sync\(|in_pool\s*=\s*False|set_config\([^)]*(false|False)\)|SET\s+app\.")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in (ROOT / "portal").rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if bad.search(line)
    ]
    assert hits == []
