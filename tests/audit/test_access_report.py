"""The access report: who holds which role, since when, who granted it (read from the audit trail),
and open invites — as a page and a CSV, for owners and compliance officers only."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from portal import clock
from portal.audit import queries
from tests.factories import add_api_token, membership_id, text_of


async def record(su, org_id, action, *, actor=None, target=None, before=None, after=None):
    target_type, target_id, label = target or (None, None, None)
    await su.execute(
        """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, target_label, before, after)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)""",
        org_id, actor.id if actor else None, actor.email if actor else None, action, target_type,
        str(target_id) if target_id else None, label, json.dumps(before) if before else None, json.dumps(after) if after else None,
    )


def report_rows(r) -> dict[str, str]:
    """email → the text of its row."""
    rows = {}
    for chunk in r.text.split("<tr>")[1:]:
        text = text_of(type("R", (), {"text": chunk.split("</tr>")[0]})())
        for word in text.split():
            if "@" in word:
                rows[word] = text
                break
    return rows


async def test_roles_since_when_and_granted_by_from_the_audit_trail(make_org, make_member, make_user, client_for, su):
    owner = await make_user()
    org = await make_org(owner=owner)
    await record(su, org.id, "org.created", actor=owner, target=("organization", org.id, org.name))
    # joined directly (demo-style), then promoted by the owner
    chen = await make_member(org, "member")
    await record(su, org.id, "member.joined", actor=owner, target=("membership", chen.id, chen.email), after={"role": "member"})
    chen_m = await membership_id(su, org, chen)
    await su.execute("UPDATE membership SET role = 'compliance_officer' WHERE id = $1", chen_m)
    await record(su, org.id, "member.role_changed", actor=owner, target=("membership", chen_m, f"Chen <{chen.email}>"),
                 before={"role": "member"}, after={"role": "compliance_officer"})
    # joined by accepting an invite the owner sent
    inviter = owner
    ines = await make_member(org, "billing_admin")
    invite_id = "5f0c7d7e-8b0a-4a38-9d1a-000000000001"
    await record(su, org.id, "invite.created", actor=inviter, target=("invite", invite_id, ines.email), after={"role": "billing_admin"})
    await record(su, org.id, "invite.accepted", actor=ines, target=("invite", invite_id, ines.email), after={"role": "billing_admin"})
    await record(su, org.id, "member.joined", actor=ines, target=("membership", ines.id, ines.email),
                 after={"role": "billing_admin", "invite_id": invite_id})
    # no record at all (an older org)
    kofi = await make_member(org, "member")

    c = await client_for(chen)  # the compliance officer reads it
    r = await c.get(f"/orgs/{org.slug}/access-report")
    assert r.status_code == 200
    rows = report_rows(r)
    assert "Owner" in rows[owner.email] and "created the organization" in rows[owner.email]
    assert "Compliance officer" in rows[chen.email] and owner.email in rows[chen.email] and "role changed" in rows[chen.email]
    assert "Billing admin" in rows[ines.email] and inviter.email in rows[ines.email] and "accepted an invite" in rows[ines.email]
    assert "not recorded" in rows[kofi.email]

    r = await c.get(f"/orgs/{org.slug}/access-report.csv")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith(f'attachment; filename="{org.slug}-access-report-')
    table = list(csv.DictReader(io.StringIO(r.text)))
    by_email = {row["email"]: row for row in table}
    assert by_email[chen.email]["role"] == "compliance_officer" and by_email[chen.email]["granted_by"] == owner.email
    assert by_email[ines.email]["granted_by"] == inviter.email
    assert by_email[kofi.email]["granted_by"] == ""
    assert all(row["kind"] == "member" for row in table)


async def test_a_transfer_shows_who_handed_over_ownership(make_org, make_member, client_for, su):
    org = await make_org()
    new_owner = await make_member(org, "member")
    new_m, old_m = await membership_id(su, org, new_owner), await membership_id(su, org, org.owner)
    await su.execute("UPDATE membership SET role = 'member' WHERE id = $1", old_m)
    await su.execute("UPDATE membership SET role = 'owner' WHERE id = $1", new_m)
    await record(su, org.id, "org.ownership_transferred", actor=org.owner, target=("membership", new_m, new_owner.email),
                 before={"owner_membership_id": str(old_m)}, after={"owner_membership_id": str(new_m), "previous_owner_role": "member"})
    c = await client_for(new_owner)
    rows = report_rows(await c.get(f"/orgs/{org.slug}/access-report"))
    assert "Owner" in rows[new_owner.email] and "ownership transferred to them" in rows[new_owner.email]
    assert org.owner.email in rows[new_owner.email]
    assert "Member" in rows[org.owner.email] and "transferred ownership" in rows[org.owner.email]


async def test_an_earlier_membership_of_the_same_person_does_not_count(make_org, make_member, make_user, client_for, su):
    org = await make_org()
    person = await make_user()
    # an event about a previous membership, long before the current one
    await su.execute(
        """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, after, created_at)
           VALUES ($1, $2, $3, 'member.joined', 'membership', $4, '{"role": "member"}', now() - interval '30 days')""",
        org.id, org.owner.id, org.owner.email, str(person.id),
    )
    await make_member(org, "member", person)
    c = await client_for(org.owner)
    rows = report_rows(await c.get(f"/orgs/{org.slug}/access-report"))
    assert "not recorded" in rows[person.email]


async def test_pending_invites_are_listed_when_invites_exist(make_org, client_for, su):
    from portal.db import registry

    org = await make_org()
    c = await client_for(org.owner)
    if "invite" not in registry.TENANT_TABLES:
        r = await c.get(f"/orgs/{org.slug}/access-report")
        assert "Invitations are not enabled" in r.text
        return
    now = clock.now()
    for email, role, offset in (("pending@example.test", "member", 3), ("late@example.test", "billing_admin", -1)):
        await su.execute(
            """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at)
               VALUES ($1, $2::varchar, $3::varchar, md5($2::varchar) || md5($3::varchar), $4, $5, $6)""",
            org.id, email, role, org.owner.id, now - timedelta(days=7), now + timedelta(days=offset),
        )
    await su.execute(
        """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, revoked_at)
           VALUES ($1, 'revoked@example.test', 'member', md5('r') || md5('s'), $2, $3, $4, $3)""",
        org.id, org.owner.id, now - timedelta(days=1), now + timedelta(days=6),
    )
    r = await c.get(f"/orgs/{org.slug}/access-report")
    text = text_of(r)
    assert "Pending invites (2)" in text and "pending@example.test" in text and "late@example.test" in text
    assert "Expired" in text and "revoked@example.test" not in text
    table = list(csv.DictReader(io.StringIO((await c.get(f"/orgs/{org.slug}/access-report.csv")).text)))
    kinds = {row["email"]: row["kind"] for row in table}
    assert kinds["pending@example.test"] == "invite (pending)" and kinds["late@example.test"] == "invite (expired)"
    assert "revoked@example.test" not in kinds
    assert {row["granted_by"] for row in table if row["kind"].startswith("invite")} == {org.owner.email}
    assert all("token" not in key for key in table[0])


async def test_the_report_degrades_without_an_invite_table(make_org, client_for, monkeypatch):
    from portal.db import registry

    monkeypatch.delitem(registry.TENANT_TABLES, "invite", raising=False)
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.get(f"/orgs/{org.slug}/access-report")
    assert r.status_code == 200 and "Invitations are not enabled" in r.text


@pytest.mark.parametrize("role", ["billing_admin", "member"])
async def test_only_audit_roles_see_the_report(role, make_org, make_member, client_for):
    org = await make_org()
    c = await client_for(await make_member(org, role))
    assert (await c.get(f"/orgs/{org.slug}/access-report")).status_code == 403
    assert (await c.get(f"/orgs/{org.slug}/access-report.csv")).status_code == 403
    assert "access-report" not in (await c.get(f"/orgs/{org.slug}")).text


async def test_programs_that_can_act_are_listed_with_who_created_them(make_world, client_for, su):
    w = await make_world()
    revoked, _ = await add_api_token(su, w.org, name="Old pipeline")
    await su.execute("UPDATE api_token SET revoked_at = now() WHERE id = $1", revoked)
    await add_api_token(su, w.org, "billing_admin", name="Invoices sync", created_by=w.users["owner"])
    agent_name = await su.fetchval("SELECT name FROM agent WHERE id = $1", w.agent_free)
    c = await client_for(w.users["compliance_officer"])
    page = text_of(await c.get(f"/orgs/{w.org.slug}/access-report"))
    assert "Programs (4)" in page  # the world's member-role token, its agent token, its SCIM token, Invoices sync
    assert "SCIM provisioning" in page
    assert "Invoices sync" in page and "Billing admin" in page and f"Agent “{agent_name}”" in page
    assert "Old pipeline" not in page and w.users["owner"].email in page
    rows = list(csv.DictReader(io.StringIO((await c.get(f"/orgs/{w.org.slug}/access-report.csv")).text)))
    tokens = {r["name"]: r for r in rows if r["kind"] in ("API token", "agent token", "SCIM token")}
    assert [r["role"] for r in tokens.values() if r["kind"] == "SCIM token"] == ["scim"]
    assert tokens["Invoices sync"]["role"] == "billing_admin" and tokens["Invoices sync"]["granted_by"] == w.users["owner"].email
    assert [r["role"] for r in tokens.values() if r["kind"] == "agent token"] == [f"agent: {agent_name}"]
    assert "Old pipeline" not in tokens and all(r["expires_utc"] for r in tokens.values())


def test_csv_columns_are_stable():
    assert queries.ACCESS_COLUMNS == (
        "kind", "name", "email", "role", "member_since_utc", "role_since_utc", "granted_by", "how", "expires_utc",
    )
