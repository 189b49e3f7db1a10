"""SECURITY 44: for random permission sets (Hypothesis), a member holding a custom role with that
set gets exactly the answers the set implies, over the whole org route table: a 403 that writes
nothing where the set lacks the route's permission, and past the guard where it holds it (unless
containment refuses: acting on someone or something whose role goes beyond the set). The same
for an API token holding that role, over the JSON API's routes."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings, strategies as st

from tests.access_matrix import ACCESS, AGENT, API_ACCESS, SCIM, AUDIT, BILLING, EXPORT, LEAVE, MANAGE_RESOURCES, MEMBERS, ORG, VIEW
from tests.factories import Client, add_api_token, add_role, give_role, restock
from tests.routes import api_walk, fill, live_routes

GRANTABLE = ("resources.manage", "billing.manage", "audit.view", "export.use", "members.manage", "org.leave")
PERMISSION = {  # the access table's names → SPEC §2's permissions
    VIEW: "org.view", MANAGE_RESOURCES: "resources.manage", BILLING: "billing.manage", AUDIT: "audit.view",
    EXPORT: "export.use", MEMBERS: "members.manage", ORG: "org.manage", LEAVE: "org.leave", AGENT: "agent.self", SCIM: "scim.provision",
}
# Routes that act on something with a role of its own: the world's plain member (``member_id``),
# pending invite and API token (role member), and its custom role (audit.view + export.use).
MEMBER_ROLE = {"resources.manage"}  # member's permissions beyond org.view and org.leave
WORLD_ROLE = {"audit.view", "export.use"}
CONTAINED = {
    "POST /orgs/{slug}/members/{member_id}/role": MEMBER_ROLE,  # the form asks for "member" too
    "GET /orgs/{slug}/members/{member_id}/remove": MEMBER_ROLE,
    "POST /orgs/{slug}/members/{member_id}/remove": MEMBER_ROLE,
    "POST /orgs/{slug}/invites/{invite_id}/resend": MEMBER_ROLE,
    "POST /orgs/{slug}/invites/{invite_id}/retry-mail": MEMBER_ROLE,
    "POST /orgs/{slug}/invites/{invite_id}/revoke": MEMBER_ROLE,
    "POST /orgs/{slug}/api-tokens": MEMBER_ROLE,  # the form asks for a member-role token
    "POST /orgs/{slug}/api-tokens/{token_id}/revoke": MEMBER_ROLE,  # the world's token is a member's
    "GET /orgs/{slug}/roles/{role_id}/edit": WORLD_ROLE,
    "POST /orgs/{slug}/roles/{role_id}/edit": WORLD_ROLE,
    "GET /orgs/{slug}/roles/{role_id}/delete": WORLD_ROLE,
    "POST /orgs/{slug}/roles/{role_id}/delete": WORLD_ROLE,
    # The JSON API's (the restocked member and invite hold the member role).
    "DELETE /api/v1/orgs/{slug}/members/{member_id}": MEMBER_ROLE,
    "POST /api/v1/orgs/{slug}/invites/{invite_id}/resend": MEMBER_ROLE,
    "DELETE /api/v1/orgs/{slug}/invites/{invite_id}": MEMBER_ROLE,
}


def stage(method: str, path: str) -> int:
    """Run order for allowed requests: pages, then changes, then removals, then deletions (a
    team's members go before the team), then leaving."""
    if method == "GET":
        return 0
    if path.endswith("/leave"):
        return 4
    if path.endswith("/delete"):
        return 3
    if path.endswith(("/remove", "/revoke")):
        return 2
    return 1


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(granted=st.sets(st.sampled_from(GRANTABLE)))
@example(granted=set())
@example(granted=set(GRANTABLE))
@example(granted={"audit.view", "export.use"})
async def test_a_custom_role_gets_exactly_what_its_permissions_imply(app, make_world, make_member, client_for, su, snapshot, granted):
    w = await make_world()
    role = await add_role(su, w.org.id, "Under test", tuple(sorted(granted)))
    await give_role(su, w.org.id, w.memberships["member"], role)
    c = await client_for(w.users["member"])
    holds = {"org.view", *granted}
    routes = [(m, p) for m, p in live_routes(app) if p.startswith("/orgs/{slug}")]
    denied = [(m, p) for m, p in routes if PERMISSION[ACCESS[f"{m} {p}"]] not in holds]
    allowed = sorted(set(routes) - set(denied), key=lambda mp: (stage(*mp), mp))
    form = {"role": "member"}

    before = await snapshot(w.org.id)
    for method, path in denied:
        url = fill(path, w.params)
        r = await c.get(url) if method == "GET" else await c.post(url, form)
        assert r.status_code == 403, (sorted(granted), method, path, r.status_code)
    assert await snapshot(w.org.id) == before, sorted(granted)

    for method, path in allowed:
        url = fill(path, w.params)
        r = await c.get(url) if method == "GET" else await c.post(url, form)
        needs = CONTAINED.get(f"{method} {path}")
        if needs is not None and not needs <= holds:
            assert r.status_code == 403, (sorted(granted), method, path, r.status_code)
        else:
            assert r.status_code not in (401, 403, 404) and r.status_code < 500, (sorted(granted), method, path, r.status_code)
    assert denied or allowed

    # The JSON API, with an API token holding the same custom role (created by the owner).
    _, token = await add_api_token(su, w.org, "custom", custom_role_id=role)
    program = Client(app)
    program.http.headers["Authorization"] = f"Bearer {token}"
    params = await restock(su, w, make_member)  # the pages' phase deleted, removed and revoked the world's own

    before = await snapshot(w.org.id)
    for method, path in api_walk(app):
        requirement = API_ACCESS.get(f"{method} {path}")
        if requirement is None:
            continue  # the public OpenAPI document
        r = await program.request(method, fill(path, params), json={"name": "From the API", "model": "gpt-4.1"})
        needs = CONTAINED.get(f"{method} {path}")
        if PERMISSION[requirement] in holds and (needs is None or needs <= holds):
            assert r.status_code not in (401, 403, 404) and r.status_code < 500, (sorted(granted), method, path, r.status_code)
        else:
            assert r.status_code == 403, (sorted(granted), method, path, r.status_code)
    if not {"resources.manage", "members.manage", "billing.manage", "export.use"} & holds:
        assert await snapshot(w.org.id) == before, sorted(granted)  # every API write was a denial
    await program.aclose()
