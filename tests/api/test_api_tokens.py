"""API tokens (SPEC §11, SECURITY 39–40): issued on the page and shown once, stored as a hash only,
and every kind of bad bearer refused the same clear way."""

from __future__ import annotations

import hashlib
import html
import re

import pytest

from tests.factories import add_api_token, add_role, bearer, events, give_role, unique
from tests.access_matrix import API_ACCESS
from tests.routes import api_walk, fill

API = "/api/v1/orgs/{slug}/agents"


def api(w) -> str:
    return API.format(slug=w.org.slug)



async def test_a_token_is_shown_once_and_stored_as_a_hash_only(make_world, client_for, su, app):
    from tests.factories import Client

    w = await make_world()
    owner = await client_for(w.users["owner"])
    r = await owner.post(f"/orgs/{w.org.slug}/api-tokens", {"name": "Deploy pipeline", "role": "member", "expires_in_days": "30"})
    assert r.status_code == 200
    token = html.unescape(re.search(r'<code id="new-token">([^<]+)</code>', r.text).group(1))
    assert re.fullmatch(r"prt_[A-Za-z0-9_-]{43}", token)  # 256 random bits
    row = await su.fetchrow("SELECT * FROM api_token WHERE org_id = $1 AND name = 'Deploy pipeline'", w.org.id)
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in " ".join(str(v) for v in row.values())  # the token itself is nowhere
    dump = await su.fetchval("SELECT string_agg(a::text, ' ') FROM audit_event a WHERE org_id = $1", w.org.id)
    assert token not in dump and token[:12] in dump  # the prefix names it in the audit trail
    listing = await owner.get(f"/orgs/{w.org.slug}/api-tokens")
    assert token not in listing.text and 'id="new-token"' not in listing.text and token[:12] in listing.text
    program = Client(app)
    r = await program.get(api(w), headers=bearer(token))
    assert r.status_code == 200, r.text
    assert (await su.fetchval("SELECT last_used_at FROM api_token WHERE id = $1", row["id"])) is not None
    await program.aclose()


async def test_bad_token_forms_are_explained(make_world, client_for, su):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    before = await su.fetchval("SELECT count(*) FROM api_token WHERE org_id = $1", w.org.id)
    for form in ({"name": "", "role": "member"}, {"name": "x", "role": "owner"}, {"name": "x", "role": "member", "expires_in_days": "400"},
                 {"name": "x", "role": "member", "expires_in_days": "-3"}, {"name": "x", "role": "nope"},
                 {"name": "x", "role": "member", "expires_in_days": "²"}, {"name": "x", "role": "member", "expires_in_days": "9" * 5000}):
        r = await owner.post(f"/orgs/{w.org.slug}/api-tokens", form)
        assert r.status_code == 422, form
        assert 'id="new-token"' not in r.text
    assert await su.fetchval("SELECT count(*) FROM api_token WHERE org_id = $1", w.org.id) == before


@pytest.mark.parametrize(
    "case", ["none", "garbage", "unknown", "revoked", "expired", "cookie only", "other org", "other org's agent", "paused agent", "basic"]
)
async def test_every_bad_bearer_is_refused_on_every_api_route_and_writes_nothing(case, make_world, client_for, su, snapshot, app):
    """The principal axis's refusals: every API route, each kind of credential that must not work."""
    from tests.factories import Client

    w, other = await make_world(), await make_world()
    _, good = await add_api_token(su, w.org)
    headers: dict[str, str] = {}
    c = Client(app)
    if case == "garbage":
        headers = {"Authorization": "Bearer not-a-token"}
    elif case == "unknown":
        headers = bearer("prt_" + "A" * 43)
    elif case == "revoked":
        token_id, token = await add_api_token(su, w.org)
        await su.execute("UPDATE api_token SET revoked_at = now() WHERE id = $1", token_id)
        headers = bearer(token)
    elif case == "expired":
        token_id, token = await add_api_token(su, w.org)
        await su.execute("UPDATE api_token SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1", token_id)
        headers = bearer(token)
    elif case == "cookie only":
        c = await client_for(w.users["owner"])  # a signed-in browser, no token: no credential on the API
    elif case == "other org":
        _, theirs = await add_api_token(su, other.org)
        headers = bearer(theirs)
    elif case == "other org's agent":
        _, theirs = await add_api_token(su, other.org, agent_id=other.agent_used)
        headers = bearer(theirs)
    elif case == "paused agent":
        _, token = await add_api_token(su, w.org, agent_id=w.agent_used)
        await su.execute("UPDATE agent SET status = 'paused' WHERE id = $1", w.agent_used)
        headers = bearer(token)
    elif case == "basic":
        headers = {"Authorization": f"Basic {good}"}
    before = await snapshot(w.org.id)
    walked = 0
    for method, path in api_walk(app):
        if f"{method} {path}" not in API_ACCESS:
            continue  # the public OpenAPI document
        r = await c.request(method, fill(path, w.params), headers=headers, json={"name": unique("x"), "model": "gpt-4.1"})
        expected = 404 if case.startswith("other org") else 401
        assert r.status_code == expected, (case, method, path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == expected
        if expected == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
        walked += 1
    assert walked == len(API_ACCESS)
    assert await snapshot(w.org.id) == before


async def test_a_token_stops_when_its_creator_could_no_longer_grant_its_role(make_world, su, app):
    """The rule: a token acts only while its creator holds members.manage and every permission of
    the token's role. Demoted → 401 on the very next call; the right back → it works again."""
    from tests.factories import Client

    w = await make_world()
    lead = await add_role(su, w.org.id, "People lead", ("members.manage", "resources.manage"))
    await give_role(su, w.org.id, w.memberships["member"], lead)
    _, token = await add_api_token(su, w.org, "member", created_by=w.users["member"])
    c = Client(app)
    assert (await c.get(api(w), headers=bearer(token))).status_code == 200
    await su.execute("UPDATE org_role SET permissions = '{resources.manage}' WHERE id = $1", lead)
    r = await c.get(api(w), headers=bearer(token))
    assert r.status_code == 401 and "suspended" in r.json()["detail"]
    await su.execute("UPDATE org_role SET permissions = '{members.manage,resources.manage}' WHERE id = $1", lead)
    assert (await c.get(api(w), headers=bearer(token))).status_code == 200
    await su.execute("DELETE FROM membership WHERE id = $1", w.memberships["member"])
    assert (await c.get(api(w), headers=bearer(token))).status_code == 401
    await c.aclose()


async def test_revoking_on_the_page_stops_the_token_and_is_audited(make_world, client_for, su, app):
    from tests.factories import Client

    w = await make_world()
    owner = await client_for(w.users["owner"])
    token_id, token = await add_api_token(su, w.org, name="Nightly")
    c = Client(app)
    assert (await c.get(api(w), headers=bearer(token))).status_code == 200
    listed = (await owner.get(f"/orgs/{w.org.slug}/api-tokens")).text
    assert f'action="/orgs/{w.org.slug}/api-tokens/{token_id}/revoke"' in listed and "Member" in listed
    r = await owner.post(f"/orgs/{w.org.slug}/api-tokens/{token_id}/revoke")
    assert r.status_code == 303
    assert (await c.get(api(w), headers=bearer(token))).status_code == 401
    assert (await events(su, w.org, "api_token.revoked"))[-1]["target_label"] == "Nightly"
    await c.aclose()
