"""Deleting an organization: owner only, slug + password, one transaction, nothing left but the
receipt; other orgs untouched; members, old URLs and invite links all dead."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re

import pytest

from portal.db import registry
from portal.exports.worker import ExportWorker
from tests.archive import export_and_download, request_export
from tests.concurrency import ChunkGate, paused_worker, start_paused
from tests.factories import PASSWORD, has, org_with_events, seed, text_of


async def tenant_counts(su, org_id) -> dict[str, int]:
    registry.load_all()
    return {name: await su.fetchval(f'SELECT count(*) FROM "{name}" WHERE org_id = $1', org_id) for name in sorted(registry.TENANT_TABLES)}


async def test_owner_deletes_the_org_and_only_the_receipt_remains(client_for, make_org, make_member, su, snapshot):
    org, other = await make_org(), await make_org()
    seeded = await seed(su, make_member, org, "doomed")
    await seed(su, make_member, other, "survivor")
    member = seeded["members"][0]
    shared = seeded["members"][1]
    await make_member(other, "member", shared)  # someone in both orgs keeps the other one
    owner = await client_for(org.owner)
    job_id, _, _ = await export_and_download(owner, org)  # a stored archive that must go too
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE org_id = $1", org.id) > 0
    other_before = await snapshot(other.id)
    counts_before = await tenant_counts(su, org.id)
    member_client = await client_for(member)
    shared_client = await client_for(shared)
    assert (await member_client.get(f"/orgs/{org.slug}")).status_code == 200

    settings = await owner.get(f"/orgs/{org.slug}/settings")
    assert 'action="/orgs/%s/delete"' % org.slug in settings.text and "Danger zone" in settings.text
    r = await owner.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    landing = await owner.get("/orgs")
    assert "permanently deleted" in text_of(landing) and org.name in text_of(landing)
    assert f'href="/orgs/{org.slug}"' not in landing.text

    # nothing of the org is left in any tenant table, nor the org itself
    assert set((await tenant_counts(su, org.id)).values()) == {0}
    assert await su.fetchval("SELECT count(*) FROM organization WHERE id = $1", org.id) == 0
    # the other org is byte-for-byte unchanged
    after = await snapshot(other.id)
    assert {k: v for k, v in after.items() if k not in ("organization", "app_user")} == {
        k: v for k, v in other_before.items() if k not in ("organization", "app_user")
    }
    assert await su.fetchval("SELECT name FROM organization WHERE id = $1", other.id) == other.name
    # the receipt, outside the tenant tables
    receipt = await su.fetchrow("SELECT * FROM deletion_receipt WHERE deleted_org_id = $1", org.id)
    assert receipt["slug"] == org.slug and receipt["name"] == org.name
    assert receipt["deleted_by"] == org.owner.id and receipt["deleted_by_email"] == org.owner.email
    assert json.loads(receipt["row_counts"]) == counts_before
    assert counts_before["membership"] == 4 and counts_before["export_chunk"] > 0

    # every old URL of the org: the same 404 as an org that never existed, for everyone
    for client in (owner, member_client, shared_client):
        unknown = text_of(await client.get("/orgs/never-existed-here"))
        for url in (f"/orgs/{org.slug}", f"/orgs/{org.slug}/settings", f"/orgs/{org.slug}/exports",
                    f"/orgs/{org.slug}/exports/{job_id}", f"/orgs/{org.slug}/exports/{job_id}/download"):
            r = await client.get(url)
            assert r.status_code == 404, (url, r.status_code)
            assert text_of(r) == unknown
    assert (await shared_client.get(f"/orgs/{other.slug}")).status_code == 200

    # its invite links are dead (the rows are gone; the landing page, where present, says so)
    if has("invite"):
        for _, token in seeded["invite_tokens"]:
            token_hash = hashlib.sha256(token.encode()).hexdigest()
            assert await su.fetchval("SELECT count(*) FROM invite WHERE token_hash = $1", token_hash) == 0
            landing = await member_client.get(f"/invites/{token}")
            assert landing.status_code == 404


@pytest.mark.parametrize(
    "confirm,password,field,message",
    [
        ("", "", "confirm", "Type"),
        ("wrong-slug", None, "confirm", "doesn't match"),
        ("UPPER", None, "confirm", "doesn't match"),
        (None, "not-my-password", "password", "isn't right"),
        (None, "", "password", "Enter your password"),
    ],
)
async def test_wrong_slug_or_password_is_refused_and_nothing_is_lost(client_for, make_org, make_member, su, snapshot, confirm, password, field, message):
    org = await make_org()
    await seed(su, make_member, org, "kept")
    owner = await client_for(org.owner)
    before = await snapshot(org.id)
    receipts = await su.fetchval("SELECT count(*) FROM deletion_receipt")
    form = {
        "confirm": org.slug if confirm is None else org.slug.upper() if confirm == "UPPER" else confirm,
        "password": PASSWORD if password is None else password,
    }
    for htmx in (False, True):
        r = await owner.post(f"/orgs/{org.slug}/delete", form, htmx=htmx)
        assert r.status_code == 422
        assert message in html.unescape(text_of(r))
        assert 'id="danger-zone"' in r.text and 'aria-invalid="true"' in r.text
        if htmx:
            assert "<html" not in r.text
        else:
            assert "<html" in r.text
        assert 'type="password"' in r.text and PASSWORD not in r.text  # never echoed
    assert await snapshot(org.id) == before
    assert await su.fetchval("SELECT count(*) FROM deletion_receipt") == receipts
    assert (await owner.get(f"/orgs/{org.slug}")).status_code == 200


@pytest.mark.parametrize("role", ["member", "billing_admin", "compliance_officer"])
async def test_only_the_owner_may_delete(client_for, make_org, make_member, su, snapshot, role):
    org = await make_org()
    user = await make_member(org, role)
    c = await client_for(user)
    before = await snapshot(org.id)
    r = await c.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": PASSWORD})
    assert r.status_code == 403
    assert await snapshot(org.id) == before


async def test_delete_needs_the_csrf_token(client_for, make_org, snapshot):
    org = await make_org()
    owner = await client_for(org.owner)
    before = await snapshot(org.id)
    r = await owner.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": PASSWORD}, csrf=False)
    assert r.status_code == 403
    assert await snapshot(org.id) == before


async def test_htmx_delete_redirects_with_hx_redirect(client_for, make_org, su):
    org = await make_org()
    owner = await client_for(org.owner)
    r = await owner.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": PASSWORD}, htmx=True)
    assert r.status_code == 200 and r.headers["hx-redirect"] == "/orgs"
    assert await su.fetchval("SELECT count(*) FROM organization WHERE id = $1", org.id) == 0


async def test_danger_zone_form_is_labelled_and_has_no_inline_code(client_for, make_org):
    org = await make_org()
    owner = await client_for(org.owner)
    page = await owner.get(f"/orgs/{org.slug}/settings")
    zone = re.search(r'<section class="card danger-zone".*?</section>', page.text, re.S).group(0)
    for input_id in re.findall(r'<input id="([^"]+)"', zone):
        assert f'<label for="{input_id}"' in zone
    assert 'name="confirm"' in zone and 'name="password"' in zone and 'autocomplete="current-password"' in zone
    assert "style=" not in zone and "<script" not in zone and "onclick" not in zone


async def test_deleting_an_org_while_its_export_runs(client_for, make_org, su):
    """The running export stops quietly at its next write; nothing of the org is left."""
    org = await org_with_events(make_org, su)
    owner = await client_for(org.owner)
    await request_export(owner, org)
    gate = ChunkGate(after=2)
    task = await start_paused(paused_worker(gate), gate, org)
    r = await owner.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": PASSWORD})
    assert r.status_code == 303
    gate.release.set()
    await asyncio.wait_for(task, timeout=60)
    assert set((await tenant_counts(su, org.id)).values()) == {0}
    assert await ExportWorker().run_once(org_id=org.id) is None


async def test_a_double_submitted_delete_deletes_once_and_never_errors(client_for, make_org, make_member, su):
    org = await make_org()
    await make_member(org, "member")
    owner = await client_for(org.owner)
    other_tab = await client_for(org.owner)
    form = {"confirm": org.slug, "password": PASSWORD}
    responses = await asyncio.gather(
        owner.post(f"/orgs/{org.slug}/delete", form), other_tab.post(f"/orgs/{org.slug}/delete", form)
    )
    assert sorted(r.status_code for r in responses) == [303, 404]
    assert await su.fetchval("SELECT count(*) FROM deletion_receipt WHERE deleted_org_id = $1", org.id) == 1


async def test_password_guessing_on_the_delete_form_is_throttled_like_sign_in(client_for, make_org, su):
    from portal.accounts.service import MAX_FAILURES_PER_PAIR

    org = await make_org()
    owner = await client_for(org.owner)
    for _ in range(MAX_FAILURES_PER_PAIR):
        r = await owner.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": "guess"})
        assert r.status_code == 422
    r = await owner.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert await su.fetchval("SELECT count(*) FROM organization WHERE id = $1", org.id) == 1
