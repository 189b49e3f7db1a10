"""Containment (SPEC §13, SECURITY 44): someone who manages members through a custom role can
only grant, edit or act on what lies within their own permissions; every escalation attempt is
refused (403, or 409 for the owner) and writes nothing."""

from __future__ import annotations

import pytest

from tests.factories import add_invite, add_role, give_role, unique

LEAD_PERMISSIONS = ("members.manage", "resources.manage", "org.leave")


@pytest.fixture
async def lead(make_world, client_for, su):
    """A world whose plain member holds "People lead" (members.manage + resources.manage + leave)."""
    w = await make_world()
    w.lead_role = await add_role(su, w.org.id, "People lead", LEAD_PERMISSIONS)
    await give_role(su, w.org.id, w.memberships["member"], w.lead_role)
    w.lead = await client_for(w.users["member"])
    return w


def at(w, path: str) -> str:
    return f"/orgs/{w.org.slug}{path}"


async def refused(w, snapshot, request, expected: int = 403):
    before = await snapshot(w.org.id)
    r = await request
    assert r.status_code == expected, (r.status_code, r.text[:300])
    assert await snapshot(w.org.id) == before
    return r


async def test_roles_beyond_oneself_cannot_be_made_edited_or_deleted(lead, snapshot, su):
    w = lead
    await refused(w, snapshot, w.lead.post(at(w, "/roles"), {"name": "Spy", "permissions": ["audit.view"]}))
    await refused(w, snapshot, w.lead.post(at(w, "/roles"), {"name": "Boss", "permissions": ["members.manage", "billing.manage"]}))
    # the role they hold: not even a rename
    await refused(w, snapshot, w.lead.post(at(w, f"/roles/{w.lead_role}/edit"), {"name": "People lead", "permissions": list(LEAD_PERMISSIONS) + ["audit.view"]}))
    await refused(w, snapshot, w.lead.post(at(w, f"/roles/{w.lead_role}/edit"), {"name": "Renamed", "permissions": ["members.manage"]}))
    await refused(w, snapshot, w.lead.post(at(w, f"/roles/{w.lead_role}/delete")))
    # a role with permissions they lack: no form, no edit, no delete
    assert (await w.lead.get(at(w, f"/roles/{w.role}/edit"))).status_code == 403
    await refused(w, snapshot, w.lead.post(at(w, f"/roles/{w.role}/edit"), {"name": "Weaker", "permissions": []}))
    await refused(w, snapshot, w.lead.post(at(w, f"/roles/{w.role}/delete")))
    # within their own permissions: fine
    r = await w.lead.post(at(w, "/roles"), {"name": "Builder", "permissions": ["resources.manage", "org.leave"]})
    assert r.status_code == 303
    form = (await w.lead.get(at(w, "/roles/new"))).text
    assert 'value="audit.view" disabled' in form and 'value="resources.manage" aria' in form


async def test_grants_beyond_oneself_are_refused(lead, snapshot, su):
    w = lead
    target = w.target  # a plain member: within the lead's permissions
    for role in ("billing_admin", "compliance_officer", str(w.role), "owner"):
        expected = 422 if role == "owner" else 403
        await refused(w, snapshot, w.lead.post(at(w, f"/members/{target}/role"), {"role": role}), expected)
    builder = await add_role(su, w.org.id, "Builder", ("resources.manage",))
    r = await w.lead.post(at(w, f"/members/{target}/role"), {"role": str(builder)})
    assert r.status_code == 303
    assert await su.fetchval("SELECT custom_role_id FROM membership WHERE id = $1", target) == builder
    menu = (await w.lead.get(at(w, "/members"))).text
    assert f'value="{builder}"' in menu and 'value="member"' in menu
    assert 'value="billing_admin"' not in menu and f'value="{w.role}"' not in menu


async def test_people_beyond_oneself_and_the_owner_are_untouchable(lead, snapshot):
    w = lead
    officer = w.memberships["compliance_officer"]
    await refused(w, snapshot, w.lead.post(at(w, f"/members/{officer}/role"), {"role": "member"}))
    await refused(w, snapshot, w.lead.post(at(w, f"/members/{officer}/remove")))
    assert (await w.lead.get(at(w, f"/members/{officer}/remove"))).status_code == 403
    await refused(w, snapshot, w.lead.post(at(w, f"/members/{w.memberships['owner']}/remove")), 409)
    await refused(w, snapshot, w.lead.post(at(w, f"/members/{w.memberships['owner']}/role"), {"role": "member"}), 409)
    await refused(w, snapshot, w.lead.post(at(w, f"/members/{w.memberships['member']}/role"), {"role": "member"}), 409)  # themselves
    r = await w.lead.post(at(w, f"/members/{w.target}/remove"))
    assert r.status_code == 303


async def test_invites_beyond_oneself_are_refused(lead, snapshot, su):
    w = lead
    for role in ("billing_admin", "compliance_officer", str(w.role)):
        await refused(w, snapshot, w.lead.post(at(w, "/invites"), {"email": f"{unique('x')}@example.test", "role": role}))
    officer_invite = await add_invite(su, w.org, role="compliance_officer")
    await refused(w, snapshot, w.lead.post(at(w, f"/invites/{officer_invite}/revoke")))
    await refused(w, snapshot, w.lead.post(at(w, f"/invites/{officer_invite}/resend")))
    listing = (await w.lead.get(at(w, "/invites"))).text
    assert "Beyond your permissions" in listing
    r = await w.lead.post(at(w, "/invites"), {"email": f"{unique('ok')}@example.test", "role": "member"})
    assert r.status_code == 303


async def test_an_expired_invite_beyond_oneself_is_not_replaced(lead, snapshot, su):
    """Inviting an address whose invite expired retires the old one: for the old invite's role,
    that is a revoke, so it needs the same permissions."""
    w = lead
    email = f"{unique('exp')}@example.test"
    old = await add_invite(su, w.org, email=email, role="compliance_officer")
    await su.execute("UPDATE invite SET created_at = now() - interval '30 days', expires_at = now() - interval '1 day' WHERE id = $1", old)
    await refused(w, snapshot, w.lead.post(at(w, "/invites"), {"email": email, "role": "member"}))


async def test_a_custom_role_without_leave_is_told_how_to_go(lead, su):
    w = lead
    await su.execute("UPDATE org_role SET permissions = '{members.manage,resources.manage}' WHERE id = $1", w.lead_role)
    r = await w.lead.get(at(w, "/leave"))
    assert r.status_code == 409
    assert "ask someone who manages members to remove you" in r.text.replace("&#39;", "'")
    assert "transfer ownership" not in r.text.lower()
    assert (await w.lead.post(at(w, "/leave"))).status_code == 403
