"""The CSRF token belongs to the session (SECURITY 37): rotated at sign-in and sign-out, a token
minted before sign-in (or for another session) is refused after it, and under an https BASE_URL
the cookie is ``__Host-`` prefixed."""

from __future__ import annotations

import dataclasses

from portal.config import get_settings
from tests.factories import PASSWORD, Client, unique


def _set_cookies(response, name: str) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "=")]


async def _sign_in(c: Client, email: str) -> None:
    r = await c.post("/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 303


async def _create_org(c: Client, token: str, *, header: bool = False, plant: str | None = None):
    """POST a new org with ``token``; ``plant``: first put ``token`` in the cookie of that name too
    (an attacker who planted a cookie and knows its token)."""
    if plant:
        c.http.cookies.set(plant, token, domain="testserver.local", path="/")
    slug = unique("csrf")
    if header:
        r = await c.http.post("/orgs", data={"name": "Replayed", "slug": slug}, headers={"X-CSRFToken": token, "HX-Request": "true"})
    else:
        r = await c.post("/orgs", {"name": "Replayed", "slug": slug, "_csrf_token": token}, csrf=False)
    return r, slug


async def test_a_token_minted_before_sign_in_is_refused_after_it(app, make_user, su):
    """An attacker who planted (or read) the anonymous cookie and its token cannot use them once
    the victim signs in: the cookie pair alone no longer passes."""
    user = await make_user()
    victim = Client(app)
    before = await victim.ensure_csrf()
    await _sign_in(victim, user.email)
    after = victim.csrf
    assert after and after != before  # rotated by the sign-in response itself

    # Replayed with the old cookie put back, as the htmx header and as a form field: 403, nothing written.
    victim.http.cookies.set("portal_csrf", before, domain="testserver.local", path="/")
    for header in (True, False):
        r, slug = await _create_org(victim, before, header=header)
        assert r.status_code == 403, header
        assert await su.fetchval("SELECT count(*) FROM organization WHERE slug = $1", slug) == 0
    # The 403 page's forms carry the session's own token, not the replayed one.
    assert after in r.text and before not in r.text
    # The session's token works.
    victim.http.cookies.set("portal_csrf", after, domain="testserver.local", path="/")
    r, slug = await _create_org(victim, after)
    assert r.status_code == 303
    assert await su.fetchval("SELECT count(*) FROM organization WHERE slug = $1", slug) == 1
    await victim.aclose()


async def test_a_planted_cookie_is_replaced_on_the_next_page(app, client_for, make_user):
    c = await client_for(await make_user())
    own = c.csrf
    attacker = Client(app)
    stranger = await attacker.ensure_csrf()  # a valid anonymous pair
    await attacker.aclose()
    c.http.cookies.set("portal_csrf", stranger, domain="testserver.local", path="/")
    r = await c.get("/account")
    assert r.status_code == 200 and own in r.text and stranger not in r.text
    assert c.csrf == own


async def test_another_sessions_token_is_refused(app, make_user, client_for, su):
    user = await make_user()
    laptop, phone = await client_for(user), await client_for(user)
    assert laptop.csrf != phone.csrf
    r, slug = await _create_org(laptop, phone.csrf, plant="portal_csrf")
    assert r.status_code == 403
    assert await su.fetchval("SELECT count(*) FROM organization WHERE slug = $1", slug) == 0


async def test_token_rotated_at_sign_out(app, make_user, su):
    user = await make_user()
    c = Client(app)
    await _sign_in(c, user.email)
    signed_in = await c.ensure_csrf()
    r = await c.post("/logout")
    assert r.status_code == 303 and len(_set_cookies(r, "portal_csrf")) == 1
    signed_out = c.csrf
    assert signed_out and signed_out != signed_in
    # Sign in again: neither the old session's token nor the signed-out one is accepted.
    await _sign_in(c, user.email)
    fresh = await c.ensure_csrf()
    assert fresh not in (signed_in, signed_out)
    for stale in (signed_in, signed_out):
        r, slug = await _create_org(c, stale, plant="portal_csrf")
        assert r.status_code == 403
        assert await su.fetchval("SELECT count(*) FROM organization WHERE slug = $1", slug) == 0
    await c.aclose()


async def test_token_rotated_at_sign_out_everywhere(app, make_user):
    user = await make_user()
    c = Client(app)
    await _sign_in(c, user.email)
    signed_in = await c.ensure_csrf()
    r = await c.post("/account/sign-out-everywhere")
    assert r.status_code == 303 and len(_set_cookies(r, "portal_csrf")) == 1
    assert c.csrf and c.csrf != signed_in
    # the anonymous token works for the next sign-in
    await _sign_in(c, user.email)
    await c.aclose()


async def test_host_prefixed_cookie_under_https(app, make_user, su):
    from portal.app import create_app

    https_app = create_app(dataclasses.replace(get_settings(), base_url="https://portal.example"), manage_pool=False)
    c = Client(https_app, base_url="https://testserver")
    r = await c.get("/login")
    [cookie] = _set_cookies(r, "__Host-portal_csrf")
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes and not any(a.startswith("domain") for a in attributes)
    assert not _set_cookies(r, "portal_csrf")
    before = c.csrf

    user = await make_user()
    r = await c.post("/login", {"email": user.email, "password": PASSWORD})
    assert r.status_code == 303 and len(_set_cookies(r, "__Host-portal_csrf")) == 1
    assert c.csrf != before
    for plant in ("__Host-portal_csrf", "portal_csrf"):
        r, slug = await _create_org(c, before, plant=plant)
        assert r.status_code == 403, plant
    c.http.cookies.delete("portal_csrf")
    r, slug = await _create_org(c, await c.ensure_csrf())
    assert r.status_code == 303
    assert await su.fetchval("SELECT count(*) FROM organization WHERE slug = $1", slug) == 1
    await c.aclose()
