"""Organization data export: the archive's content and format, isolation, the pages and who may
use them. (The engine's recovery and the rate limit have their own files.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from datetime import timedelta

import pytest

from portal import clock
from portal.config import get_settings
from portal.db import registry
from portal.exports.exporters import EXPORTERS
from portal.records import REDACTED
from portal.exports.worker import ExportWorker
from tests.archive import FILES, expected_counts, export_and_download, records_of, request_export, unzip, verify_archive
from tests.factories import has, seed, text_of, unique


async def test_owner_exports_a_verifiable_archive(client_for, make_org, make_member, su):
    org = await make_org()
    await seed(su, make_member, org, unique("acme"))
    c = await client_for(org.owner)
    job_id, data, r = await export_and_download(c, org)

    # the download: an attachment named after the org and the UTC time, checkable end to end
    assert r.headers["content-type"] == "application/zip"
    assert re.fullmatch(rf'attachment; filename="{org.slug}-export-\d{{8}}T\d{{6}}Z\.zip"', r.headers["content-disposition"])
    assert int(r.headers["content-length"]) == len(data)
    assert r.headers["cache-control"] == "no-store"
    job = await su.fetchrow("SELECT * FROM export_job WHERE id = $1", job_id)
    assert job["status"] == "done" and job["progress"] == 100 and job["attempts"] == 1
    assert job["sha256"] == hashlib.sha256(data).hexdigest() and job["size_bytes"] == len(data)
    assert r.headers["repr-digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    assert job["expires_at"] - job["finished_at"] == get_settings().export_ttl

    manifest, files = verify_archive(data)
    assert manifest["organization"] == {"id": str(org.id), "slug": org.slug, "name": org.name}
    assert manifest["generated_by"] == {"user_id": str(org.owner.id), "email": org.owner.email}
    assert manifest["export_id"] == str(job_id) and manifest["format_version"] == 2
    counts = {f["name"]: f["records"] for f in manifest["files"]}
    assert counts == await expected_counts(su, org.id, job_id)
    assert job["records_done"] == sum(counts.values())

    # content spot checks: settings incl. billing, members with roles, the audit trail in order
    organization = json.loads(files["organization.json"])
    assert organization["billing"]["plan"] == "team" and organization["billing"]["billing_email"].startswith("billing-")
    members = records_of("members.json", files["members.json"])
    assert {m["email"] for m in members} >= {org.owner.email}
    assert {m["role"] for m in members} == {"owner", "member", "billing_admin", "compliance_officer"}
    audit = records_of("audit_log.jsonl", files["audit_log.jsonl"])
    assert [a["created_at"] for a in audit] == sorted(a["created_at"] for a in audit)
    assert any(a["action"] == "export.requested" for a in audit)
    assert all(a["created_at"].endswith("Z") for a in audit)
    if has("invite"):
        invites = records_of("invites.json", files["invites.json"])
        assert [i["email"].split("-")[0] for i in invites] == ["pending"]
        assert "token" not in files["invites.json"].decode()
    if has("connection"):
        connections = records_of("connections.json", files["connections.json"])
        assert sorted(str(c["secret"]) for c in connections) == sorted([REDACTED, "None"])
    if has("team", "team_member"):
        teams = records_of("teams.json", files["teams.json"])
        assert sorted(len(t["members"]) for t in teams) == [0, 2]

    # audited: requested (by the owner), completed (by the system), downloaded (by the owner)
    events = await su.fetch(
        "SELECT action, actor_id FROM audit_event WHERE org_id = $1 AND target_id = $2 ORDER BY created_at", org.id, str(job_id)
    )
    assert [(e["action"], e["actor_id"]) for e in events] == [
        ("export.requested", org.owner.id), ("export.completed", None), ("export.downloaded", org.owner.id)
    ]


async def test_canaries_of_another_org_and_secrets_never_appear(client_for, make_org, make_member, su):
    a, b = await make_org(), await make_org()
    canary_a, canary_b = f"canary{uuid.uuid4().hex}", f"canary{uuid.uuid4().hex}"
    seeded_a = await seed(su, make_member, a, canary_a)
    await seed(su, make_member, b, canary_b)
    # B also has exports of its own, with archive data
    cb = await client_for(b.owner)
    await export_and_download(cb, b)

    c = await client_for(a.owner)
    _, data, _ = await export_and_download(c, a)
    verify_archive(data)
    contents = b"".join(unzip(data).values()) + data
    assert canary_a.encode() in contents  # the seeding worked
    for needle in (canary_b, str(b.id), b.slug, b.owner.email):
        assert needle.encode() not in contents, needle
    for secret in seeded_a["secrets"]:
        assert secret.encode() not in contents, "secrets and token hashes are never exported"


async def test_an_absent_table_gives_an_empty_file(client_for, make_org, su, monkeypatch):
    """An exporter whose table this build doesn't have still writes its file, empty, count 0."""
    org = await make_org()
    registry.load_all()
    for name in ("agent", "workflow", "invite"):
        if name in registry.TENANT_TABLES:
            monkeypatch.delitem(registry.TENANT_TABLES, name)
    c = await client_for(org.owner)
    _, data, _ = await export_and_download(c, org)
    manifest, files = verify_archive(data)
    counts = {f["name"]: f["records"] for f in manifest["files"]}
    assert counts["agents.json"] == counts["workflows.json"] == counts["invites.json"] == 0
    assert files["agents.json"] == b"[]\n"


async def test_large_export_spans_many_chunks_and_pages(client_for, make_org, su):
    org = await make_org()
    await su.execute(
        """INSERT INTO audit_event (org_id, action, target_label, after, created_at)
           SELECT $1, 'bulk.event', 'row ' || g, jsonb_build_object('n', g, 'pad', repeat(md5(g::text), 4)),
                  now() - interval '1 day' + g * interval '1 millisecond'
           FROM generate_series(1, 3000) g""",
        org.id,
    )
    c = await client_for(org.owner)
    worker = ExportWorker(page_size=250, chunk_size=16 * 1024)
    job_id, data, _ = await export_and_download(c, org, worker)
    manifest, files = verify_archive(data)
    audit = records_of("audit_log.jsonl", files["audit_log.jsonl"])
    assert len(audit) == 3001 and len({a["id"] for a in audit}) == 3001  # nothing lost or repeated across pages
    chunks = await su.fetch("SELECT seq, length(data) AS n FROM export_chunk WHERE job_id = $1 ORDER BY seq", job_id)
    assert [ch["seq"] for ch in chunks] == list(range(len(chunks))) and len(chunks) > 5
    assert all(ch["n"] == 16 * 1024 for ch in chunks[:-1])


async def test_page_shows_progress_polling_then_a_download_link(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    page = await c.get(f"/orgs/{org.slug}/exports")
    assert page.status_code == 200 and "No exports yet" in page.text and "Request export" in page.text
    r = await c.post(f"/orgs/{org.slug}/exports")
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{org.slug}/exports"
    page = await c.get(f"/orgs/{org.slug}/exports")
    assert "Export requested" in text_of(page)
    job_id = await su.fetchval("SELECT id FROM export_job WHERE org_id = $1", org.id)
    base = f"/orgs/{org.slug}/exports/{job_id}"
    row = re.search(rf'<tr id="export-{job_id}"[^>]*>', page.text).group(0)
    assert f'hx-get="{base}"' in row and 'hx-trigger="every 1s"' in row and 'hx-swap="outerHTML"' in row and 'hx-target="this"' in row
    assert "Queued" in page.text and f"{base}/download" not in page.text
    assert "2 left this hour" in text_of(page)

    # the polled fragment while it builds: a progress bar, still polling
    await su.execute("UPDATE export_job SET status = 'running', progress = 42, records_done = 42, records_total = 100 WHERE id = $1", job_id)
    frag = await c.get(base, headers={"HX-Request": "true"})
    assert frag.status_code == 200 and frag.text.lstrip().startswith("<tr")
    assert '<progress max="100" value="42"' in frag.text and 'hx-trigger="every 1s"' in frag.text
    assert "<html" not in frag.text and "style=" not in frag.text
    assert frag.headers["vary"] == "HX-Request"
    await su.execute("UPDATE export_job SET status = 'queued', progress = 0, records_done = 0, records_total = 0 WHERE id = $1", job_id)

    assert await ExportWorker().run_once(org_id=org.id) == job_id
    frag = await c.get(base, headers={"HX-Request": "true"})
    assert "hx-trigger" not in frag.text and "Ready" in frag.text and f'href="{base}/download"' in frag.text

    # without htmx the same URL is a page of its own, with the checksum
    detail = await c.get(base)
    sha = await su.fetchval("SELECT sha256 FROM export_job WHERE id = $1", job_id)
    assert "<html" in detail.text and sha in detail.text

    # the list: who, when, size, until when
    page = await c.get(f"/orgs/{org.slug}/exports")
    job = await su.fetchrow("SELECT * FROM export_job WHERE id = $1", job_id)
    for shown in (org.owner.email, job["created_at"].strftime("%Y-%m-%d %H:%M"), job["expires_at"].strftime("%Y-%m-%d %H:%M")):
        assert shown in page.text
    assert re.search(r"\d+(\.\d)? (bytes|KB|MB)", text_of(page))


async def test_failed_job_shows_its_message_and_offers_nothing(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    await su.execute(
        "UPDATE export_job SET status = 'failed', error = 'The export could not be completed.', finished_at = now() WHERE id = $1", job_id
    )
    frag = await c.get(f"/orgs/{org.slug}/exports/{job_id}", headers={"HX-Request": "true"})
    assert "Failed" in frag.text and "could not be completed" in frag.text and "hx-trigger" not in frag.text
    assert (await c.get(f"/orgs/{org.slug}/exports/{job_id}/download")).status_code == 404


@pytest.mark.parametrize("role", ["member", "billing_admin"])
async def test_roles_without_the_export_permission_get_403_and_write_nothing(client_for, make_org, make_member, su, snapshot, role):
    org = await make_org()
    owner = await client_for(org.owner)
    job_id, _, _ = await export_and_download(owner, org)
    c = await client_for(await make_member(org, role))
    before = await snapshot(org.id)
    for method, url in [
        ("GET", f"/orgs/{org.slug}/exports"),
        ("POST", f"/orgs/{org.slug}/exports"),
        ("GET", f"/orgs/{org.slug}/exports/{job_id}"),
        ("GET", f"/orgs/{org.slug}/exports/{job_id}/download"),
    ]:
        r = await (c.post(url) if method == "POST" else c.get(url))
        assert r.status_code == 403, (method, url, r.status_code)
    assert await snapshot(org.id) == before
    page = await c.get(f"/orgs/{org.slug}")
    assert f"/orgs/{org.slug}/exports" not in page.text  # not in the navigation either


async def test_compliance_officer_may_export(client_for, make_org, make_member):
    org = await make_org()
    officer = await make_member(org, "compliance_officer")
    c = await client_for(officer)
    _, data, _ = await export_and_download(c, org)
    manifest, _ = verify_archive(data)
    assert manifest["generated_by"]["email"] == officer.email


async def test_another_orgs_export_id_is_404_like_any_unknown_id(client_for, make_org, su, snapshot):
    a, b = await make_org(), await make_org()
    cb = await client_for(b.owner)
    b_job, _, _ = await export_and_download(cb, b)
    ca = await client_for(a.owner)
    before = await snapshot(b.id)
    pages = []
    for export_id in (str(b_job), str(uuid.uuid4()), "not-a-uuid", "%00", "x" * 300):
        for suffix in ("", "/download"):
            r = await ca.get(f"/orgs/{a.slug}/exports/{export_id}{suffix}")
            assert r.status_code == 404, (export_id, suffix, r.status_code)
            pages.append(text_of(r))
    assert len(set(pages)) == 1
    assert await snapshot(b.id) == before


async def test_download_stops_working_for_a_removed_member(client_for, make_org, make_member, su):
    org = await make_org()
    officer = await make_member(org, "compliance_officer")
    c = await client_for(officer)
    job_id, _, _ = await export_and_download(c, org)
    await su.execute("DELETE FROM membership WHERE org_id = $1 AND user_id = $2", org.id, officer.id)
    r = await c.get(f"/orgs/{org.slug}/exports/{job_id}/download")
    assert r.status_code == 404 and b"PK" not in r.content[:2]
    assert (await c.get(f"/orgs/{org.slug}/exports")).status_code == 404


async def test_archives_expire_and_are_purged(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    job_id, _, _ = await export_and_download(c, org)
    clock.advance(get_settings().export_ttl + timedelta(seconds=1))
    c = await client_for(org.owner)  # a fresh session: the old one timed out meanwhile
    # past its expiry the archive is no longer offered, even before the purge ran
    assert (await c.get(f"/orgs/{org.slug}/exports/{job_id}/download")).status_code == 404
    assert "Expired" in (await c.get(f"/orgs/{org.slug}/exports/{job_id}", headers={"HX-Request": "true"})).text
    assert await ExportWorker().purge_expired(org_id=org.id) == 1
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", job_id) == 0
    assert await su.fetchval("SELECT status FROM export_job WHERE id = $1", job_id) == "expired"
    page = await c.get(f"/orgs/{org.slug}/exports")
    assert "Expired" in page.text and f"{job_id}/download" not in page.text


async def test_worker_purges_across_orgs(client_for, make_org, su):
    orgs = [await make_org(), await make_org()]
    jobs = []
    for org in orgs:
        jobs.append((await export_and_download(await client_for(org.owner), org))[0])
    clock.advance(get_settings().export_ttl + timedelta(seconds=1))
    assert await ExportWorker().purge_expired() >= 2
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = ANY($1::uuid[])", jobs) == 0


def test_every_file_is_documented():
    doc = (__import__("portal.config", fromlist=["ROOT"]).ROOT / "docs" / "export-format.md").read_text()
    assert list(EXPORTERS) == FILES
    for name, exporter in EXPORTERS.items():
        assert f"`{name}`" in doc, name
        schema = exporter.record_schema
        for field in schema["properties"]:
            assert f"`{field}`" in doc, (name, field)


# route, method, expected status for: owner, compliance_officer, billing_admin, member, member of another org, anonymous
MATRIX = [
    ("GET", "/exports", (200, 200, 403, 403, 404, 303)),
    ("POST", "/exports", (303, 303, 403, 403, 404, 303)),
    ("GET", "/exports/{job}", (200, 200, 403, 403, 404, 303)),
    ("GET", "/exports/{job}/download", (200, 200, 403, 403, 404, 303)),
    ("POST", "/delete", (422, 403, 403, 403, 404, 303)),  # a wrong password: the owner is refused too
]


async def test_role_matrix_of_the_export_and_delete_routes(app, client_for, make_org, make_member, snapshot, client):
    org, elsewhere = await make_org(), await make_org()
    owner = await client_for(org.owner)
    job_id, _, _ = await export_and_download(owner, org)
    clients = [
        owner,
        await client_for(await make_member(org, "compliance_officer")),
        await client_for(await make_member(org, "billing_admin")),
        await client_for(await make_member(org, "member")),
        await client_for(elsewhere.owner),
        client,
    ]
    for method, path, expected in MATRIX:
        url = f"/orgs/{org.slug}" + path.format(job=job_id)
        for who, (c, status) in enumerate(zip(clients, expected)):
            before = await snapshot(org.id)
            data = {"confirm": org.slug, "password": "wrong"} if path == "/delete" else {}
            r = await (c.post(url, data) if method == "POST" else c.get(url))
            assert r.status_code == status, (method, path, who, r.status_code)
            if status >= 400 or c is client:  # refused (anonymous: sent to sign in): nothing written
                assert await snapshot(org.id) == before, (method, path, who)
