"""Organizations and web conventions: creation, the org switcher, 404/403, CSRF, security headers."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from litestar import get

from tests.factories import Client, text_of, unique

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "",
    "x-frame-options": "DENY",
}


def assert_security_headers(r, authenticated=True):
    for name, expected in SECURITY_HEADERS.items():
        assert name in r.headers, (name, r.status_code)
        assert expected in r.headers[name]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    if authenticated:
        assert r.headers["cache-control"] == "no-store"


def main_of(r) -> str:
    """The page body without nonce-like values (CSRF token), for comparing pages."""
    html = r.text
    return re.sub(r'(X-CSRFToken&#34;: &#34;|X-CSRFToken": ")[^&"]+', "TOKEN", re.sub(r'name="_csrf_token" value="[^"]+"', "", html))


async def test_create_org_makes_the_creator_owner(client_for, make_user, su):
    user = await make_user()
    c = await client_for(user)
    slug = unique("acme")
    r = await c.post("/orgs", {"name": "Acme Robotics", "slug": slug})
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{slug}"
    dash = await c.get(f"/orgs/{slug}")
    assert dash.status_code == 200 and "Acme Robotics" in dash.text and "Owner" in dash.text
    role = await su.fetchval(
        "SELECT m.role FROM membership m JOIN organization o ON o.id = m.org_id WHERE o.slug = $1 AND m.user_id = $2", slug, user.id
    )
    assert role == "owner"
    assert await su.fetchval("SELECT count(*) FROM audit_event a JOIN organization o ON o.id = a.org_id WHERE o.slug = $1 AND action = 'org.created'", slug) == 1


async def test_slug_is_derived_from_the_name_when_empty(client_for, make_user):
    c = await client_for(await make_user())
    name = f"Zeta Labs {unique('z')}"
    r = await c.post("/orgs", {"name": name, "slug": ""})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/orgs/zeta-labs-z-")


@pytest.mark.parametrize(
    "slug,message",
    [
        ("ab", "3 to 40"),
        ("x" * 41, "3 to 40"),
        ("under_score", "lowercase"),
        ("-leading", "lowercase"),
        ("trailing-", "lowercase"),
        ("has space", "lowercase"),
        ("ünïcode", "lowercase"),
        ("two--hyphens", "two hyphens"),
        ("admin", "reserved"),
        ("settings", "reserved"),
    ],
)
async def test_slug_rules(client_for, make_user, slug, message):
    c = await client_for(await make_user())
    r = await c.post("/orgs", {"name": "Valid Name", "slug": slug})
    assert r.status_code == 422
    assert message in text_of(r)


async def test_taken_slug_explains(client_for, make_org, make_user):
    org = await make_org()
    c = await client_for(await make_user())
    r = await c.post("/orgs", {"name": "Copycat", "slug": org.slug})
    assert r.status_code == 422 and "already taken" in r.text


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=500), slug=st.text(max_size=200))
async def test_org_form_fuzz_never_500(app, make_user, name, slug):
    from tests.factories import Client as _C
    from portal.accounts import sessions

    user = await make_user()
    c = _C(app)
    c.http.cookies.set(sessions.COOKIE, await sessions.create(user.id), domain="testserver.local")
    r = await c.post("/orgs", {"name": name, "slug": slug})
    assert r.status_code in (303, 422)
    assert_security_headers(r)
    await c.aclose()


async def test_switcher_lists_only_my_orgs_with_my_role(client_for, make_org, make_member, make_user):
    user = await make_user()
    a, b, other = await make_org(), await make_org(), await make_org()
    await make_member(a, "billing_admin", user)
    await make_member(b, "compliance_officer", user)
    c = await client_for(user)
    r = await c.get(f"/orgs/{a.slug}")
    assert f'href="/orgs/{a.slug}"' in r.text and f'href="/orgs/{b.slug}"' in r.text
    assert other.slug not in r.text
    listing = await c.get("/orgs")
    assert "Billing admin" in listing.text and "Compliance officer" in listing.text


async def test_non_member_and_unknown_org_get_the_same_404(client_for, make_org, make_user):
    org = await make_org()
    c = await client_for(await make_user())
    r1 = await c.get(f"/orgs/{org.slug}")
    r2 = await c.get("/orgs/no-such-org-anywhere")
    r3 = await c.get(f"/orgs/{org.slug}/settings")
    assert r1.status_code == r2.status_code == r3.status_code == 404
    assert main_of(r1) == main_of(r2) == main_of(r3)
    assert_security_headers(r1)


async def test_member_lacking_permission_gets_403(client_for, make_org, make_member):
    org = await make_org()
    member = await make_member(org, "member")
    c = await client_for(member)
    r = await c.get(f"/orgs/{org.slug}/settings")
    assert r.status_code == 403
    assert_security_headers(r)
    r = await c.post(f"/orgs/{org.slug}/settings", {"name": "Hijacked"})
    assert r.status_code == 403


async def test_owner_renames_the_org_and_it_is_audited(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.post(f"/orgs/{org.slug}/settings", {"name": "Renamed Inc"})
    assert r.status_code == 303
    assert await su.fetchval("SELECT name FROM organization WHERE id = $1", org.id) == "Renamed Inc"
    ev = await su.fetchrow("SELECT before, after, actor_id FROM audit_event WHERE org_id = $1 AND action = 'org.renamed'", org.id)
    assert ev["actor_id"] == org.owner.id and "Renamed Inc" in ev["after"]


async def test_unsafe_request_without_csrf_token_is_refused_and_writes_nothing(client_for, make_org, snapshot):
    org = await make_org()
    c = await client_for(org.owner)
    before = await snapshot(org.id)
    r = await c.post(f"/orgs/{org.slug}/settings", {"name": "No Token"}, csrf=False)
    assert r.status_code == 403
    assert_security_headers(r)
    r = await c.post(f"/orgs/{org.slug}/settings", {"name": "Bad Token", "_csrf_token": "forged"}, csrf=False)
    assert r.status_code == 403
    r = await c.post("/orgs", {"name": "No Token Org", "slug": unique("nt")}, csrf=False)
    assert r.status_code == 403
    assert await snapshot(org.id) == before


async def test_csrf_header_works_for_htmx(client_for, make_org):
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.http.post(
        f"/orgs/{org.slug}/settings", data={"name": "Via Header"}, headers={"X-CSRFToken": c.csrf, "HX-Request": "true"}
    )
    assert r.status_code == 200 and r.headers["HX-Redirect"] == f"/orgs/{org.slug}/settings"


async def test_injected_org_and_role_fields_are_ignored(client_for, make_org, make_member, su):
    a, b = await make_org(), await make_org()
    c = await client_for(a.owner)
    r = await c.post(
        f"/orgs/{a.slug}/settings",
        {"name": "Injected", "org_id": str(b.id), "org": b.slug, "role": "owner", "slug": b.slug},
        headers={"X-Org-Id": str(b.id)},
    )
    assert r.status_code == 303
    assert await su.fetchval("SELECT name FROM organization WHERE id = $1", a.id) == "Injected"
    assert await su.fetchval("SELECT name FROM organization WHERE id = $1", b.id) == b.name


async def test_security_headers_on_every_kind_of_response(database, client_for, make_org, make_member):
    """200, 303, 403, 404, 422 and a forced 500 all carry the headers."""
    from portal.app import create_app

    @get("/test-crash")
    async def crash() -> str:
        raise RuntimeError("boom")

    app = create_app(manage_pool=False, extra_routes=[crash])
    org = await make_org()
    member = await make_member(org, "member")
    c = Client(app)
    from portal.accounts import sessions

    c.http.cookies.set(sessions.COOKIE, await sessions.create(member.id), domain="testserver.local")
    await c.ensure_csrf()
    responses = {
        200: await c.get(f"/orgs/{org.slug}"),
        403: await c.get(f"/orgs/{org.slug}/settings"),
        404: await c.get("/definitely/not/here"),
        422: await c.post("/orgs", {"name": "", "slug": "!"}),
        500: await c.get("/test-crash"),
    }
    for status, r in responses.items():
        assert r.status_code == status
        assert_security_headers(r)
    assert "Something went wrong" in responses[500].text and "boom" not in responses[500].text
    anon = Client(app)
    r = await anon.get("/login")
    assert_security_headers(r)
    r = await anon.get("/static/app.css")
    assert r.status_code == 200 and "x-content-type-options" in r.headers
    await c.aclose()
    await anon.aclose()


async def test_htmx_is_vendored_2x_and_pages_load_nothing_third_party(client):
    r = await client.get("/static/htmx.min.js")
    assert r.status_code == 200 and 'version:"2.0.11"' in r.text
    page = await client.get("/login")
    assert not re.search(r'(src|href)="(https?:)?//', page.text)


async def test_anonymous_gets_sent_to_login_with_next(client, make_org):
    org = await make_org()
    r = await client.get(f"/orgs/{org.slug}/settings?tab=1")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/orgs/{org.slug}/settings%3Ftab%3D1"
