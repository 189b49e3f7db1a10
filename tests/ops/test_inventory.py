"""Invariants over the whole code base: every route is public-by-declaration or behind a session
(and, under /orgs/{slug}, behind a membership and a named permission); every table is tenant-owned
or on the short global list."""

from __future__ import annotations

import re


from portal.db import registry
from portal.tenancy.context import OrgContextMiddleware, required_permission
from portal.tenancy.public import PUBLIC_ROUTES, is_public
from portal.web.auth import SessionMiddleware

ORG_PATH = "/orgs/{slug}"


def all_routes(app):
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            yield route.path_format, handler


def test_every_route_is_public_by_declaration_or_guarded(app):
    from portal.api.auth import TokenContextMiddleware

    unguarded = []
    for path, handler in all_routes(app):
        middleware = handler.resolve_middleware()
        if path.startswith(("/api/", "/scim/")):  # the JSON API and SCIM: a bearer token on every org route, or public
            if path.startswith(("/api/v1/orgs/{slug}", "/scim/v2/orgs/{slug}")):
                if TokenContextMiddleware not in middleware:
                    unguarded.append((path, "API org route without the token context"))
                try:
                    required_permission(handler)
                except RuntimeError:
                    unguarded.append((path, "API route without a permission"))
            elif path not in PUBLIC_ROUTES:
                unguarded.append((path, "API route neither public nor an org route"))
            continue
        if SessionMiddleware not in middleware:
            unguarded.append((path, "no session middleware"))
        if path.startswith(ORG_PATH):
            if OrgContextMiddleware not in middleware:
                unguarded.append((path, "org route without org context"))
            try:
                required_permission(handler)
            except RuntimeError:
                unguarded.append((path, "org route without a permission"))
            if path in PUBLIC_ROUTES:
                unguarded.append((path, "org route declared public"))
    assert unguarded == []


def test_public_list_names_only_real_routes(app):
    paths = {path for path, _ in all_routes(app)}
    assert set(PUBLIC_ROUTES) <= paths, set(PUBLIC_ROUTES) - paths
    served: dict[str, set[str]] = {}
    for path, handler in all_routes(app):
        served.setdefault(path, set()).update(handler.http_methods)
    for path, methods in PUBLIC_ROUTES.items():
        assert methods - {"HEAD"} <= served[path], (path, methods - served[path])


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x0000000-0000-0000-0000-000000000000", path)


async def test_anonymous_requests_to_non_public_routes_go_to_sign_in(app, client):
    """Deny by default, proven live: every non-public route, every method, redirects anonymous callers."""
    checked = 0
    for path, handler in all_routes(app):
        for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
            if is_public(path, method):
                continue
            r = await client.request(method, _fill(path), data={"_csrf_token": await client.ensure_csrf()})
            if path.startswith(("/api/", "/scim/")):  # programs get a Bearer challenge, not a sign-in page
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.headers["www-authenticate"].startswith("Bearer"), (method, path)
                kind = "application/scim+json" if path.startswith("/scim/") else "application/problem+json"
                assert r.headers["content-type"].startswith(kind), (method, path)
            else:
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/login?next="), (method, path)
            checked += 1
    assert checked >= 5


async def test_htmx_anonymous_request_gets_hx_redirect(client):
    r = await client.get("/orgs", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.headers["HX-Redirect"] == "/login?next=/orgs"


async def test_every_table_is_tenant_owned_or_global(su):
    registry.load_all()
    tables = {r["tablename"] for r in await su.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    known = set(registry.TENANT_TABLES) | set(registry.GLOBAL_TABLES)
    assert tables - known == set(), "tables neither tenant-owned nor declared global"
    assert set(registry.TENANT_TABLES) <= tables
    # The global list stays short and every entry says why.
    assert len(registry.GLOBAL_TABLES) <= 10
    assert all(reason for _, reason in registry.GLOBAL_TABLES.values())


async def test_tenant_tables_carry_a_cascading_indexed_org_id(su):
    for name in registry.TENANT_TABLES:
        col = await su.fetchrow(
            "SELECT is_nullable, data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = 'org_id'",
            name,
        )
        assert col is not None and col["is_nullable"] == "NO" and col["data_type"] == "uuid", name
        fk = await su.fetchval(
            """SELECT confdeltype::text FROM pg_constraint
               WHERE conrelid = $1::regclass AND contype = 'f' AND confrelid = 'organization'::regclass
                 AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'org_id')]::smallint[]""",
            name,
        )
        assert fk == "c", f"{name}.org_id must reference organization ON DELETE CASCADE"
        indexed = await su.fetchval(
            """SELECT count(*) FROM pg_index i
               WHERE i.indrelid = $1::regclass
                 AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'org_id')""",
            name,
        )
        assert indexed >= 1, f"{name}.org_id needs an index that starts with it"


async def test_piccolo_tables_match_the_database(su):
    registry.load_all()
    tables = {**registry.TENANT_TABLES, **{k: t for k, (t, _) in registry.GLOBAL_TABLES.items() if t}}
    for name, table in tables.items():
        db_cols = {r["column_name"] for r in await su.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = $1", name)}
        model_cols = {c._meta.db_column_name for c in table._meta.columns}
        assert model_cols == db_cols, f"{name}: model {sorted(model_cols ^ db_cols)} differ from the database"
