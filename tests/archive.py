"""Helpers for the export and deletion tests: seeding an org with every kind of record (canaries
included), running an export end to end, and checking an archive against its manifest and the
documented format."""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import zipfile
from datetime import timedelta
from uuid import UUID

import jsonschema

from portal import clock
from portal.db import registry
from portal.exports.exporters import EXPORTERS
from portal.exports.format import MANIFEST, MANIFEST_SCHEMA
from portal.exports.worker import ExportWorker

FILES = [
    "organization.json",
    "members.json",
    "teams.json",
    "agents.json",
    "workflows.json",
    "connections.json",
    "invites.json",
    "audit_log.jsonl",
]


def has(*tables: str) -> bool:
    registry.load_all()
    return all(t in registry.TENANT_TABLES for t in tables)


async def seed(su, make_member, org, tag: str) -> dict:
    """Give ``org`` members, billing settings, audit events and — where those tables exist in this
    build — agents, workflows, connections (with a secret), teams and invites of every state.
    Every free-text value carries ``tag`` (a canary)."""
    info: dict = {"secrets": []}
    members = [await make_member(org, role, None) for role in ("member", "billing_admin", "compliance_officer")]
    await su.execute("UPDATE app_user SET name = $2 WHERE id = $1", members[0].id, f"Person {tag}")
    await su.execute("UPDATE billing_settings SET billing_email = $2, plan = 'team' WHERE org_id = $1", org.id, f"billing-{tag}@example.test")
    for i in range(5):
        await su.execute(
            """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, target_label, before, after, ip)
               VALUES ($1, $2, $3, 'test.event', 'thing', $4, $5, $6::jsonb, $7::jsonb, '10.0.0.1')""",
            org.id, org.owner.id, org.owner.email, str(i), f"label {tag} {i}",
            json.dumps({"value": f"before {tag}"}), json.dumps({"value": f"after {tag}", "n": i}),
        )
    if has("agent"):
        agent = await su.fetchval(
            "INSERT INTO agent (org_id, name, description, model) VALUES ($1, $2, $3, 'gpt-4o') RETURNING id",
            org.id, f"Agent {tag}", f"does {tag} things",
        )
        await su.execute("INSERT INTO agent (org_id, name, model, status) VALUES ($1, $2, 'claude', 'paused')", org.id, f"Paused {tag}")
        if has("workflow"):
            await su.execute(
                "INSERT INTO workflow (org_id, name, agent_id, definition) VALUES ($1, $2, $3, $4::jsonb)",
                org.id, f"Flow {tag}", agent, json.dumps({"steps": [{"say": f"hello {tag}"}]}),
            )
    if has("connection"):
        secret = f"SECRET-{tag}-{secrets.token_hex(8)}"
        info["secrets"].append(secret)
        await su.execute(
            """INSERT INTO connection (org_id, name, kind, config, secret_ciphertext, secret_set_at)
               VALUES ($1, $2, 'webhook', $3::jsonb, $4, now())""",
            org.id, f"Hook {tag}", json.dumps({"url": f"https://{tag}.example.test/hook"}), secret,
        )
        await su.execute(
            "INSERT INTO connection (org_id, name, kind) VALUES ($1, $2, 'slack')", org.id, f"Plain {tag}"
        )
    if has("team", "team_member"):
        team = await su.fetchval("INSERT INTO team (org_id, name, description) VALUES ($1, $2, '') RETURNING id", org.id, f"Team {tag}")
        await su.execute("INSERT INTO team (org_id, name) VALUES ($1, $2)", org.id, f"Empty team {tag}")
        for m in members[:2]:
            mid = await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, m.id)
            await su.execute("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", org.id, team, mid)
    if has("invite"):
        info["invite_tokens"] = []
        now = clock.now()
        for state in ("pending", "revoked", "accepted", "expired"):
            token = secrets.token_urlsafe(32)
            info["invite_tokens"].append((state, token))
            token_hash = hashlib.sha256(token.encode()).hexdigest()
            info["secrets"].append(token_hash)
            created = now - timedelta(days=10) if state == "expired" else now
            await su.execute(
                """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, revoked_at, accepted_at)
                   VALUES ($1, $2, 'member', $3, $4, $5, $6, $7, $8)""",
                org.id, f"{state}-{tag}@example.test".lower(), token_hash, org.owner.id, created,
                created + timedelta(days=7),
                now if state == "revoked" else None,
                now if state == "accepted" else None,
            )
    info["members"] = members
    return info


async def expected_counts(su, org_id: UUID, job_id: UUID) -> dict[str, int]:
    """What the archive of ``job_id`` must hold, counted by the superuser."""

    async def count(sql: str) -> int:
        return await su.fetchval(sql, org_id)

    counts = {
        "organization.json": 1,
        "members.json": await count("SELECT count(*) FROM membership WHERE org_id = $1"),
        "teams.json": await count("SELECT count(*) FROM team WHERE org_id = $1") if has("team", "team_member") else 0,
        "agents.json": await count("SELECT count(*) FROM agent WHERE org_id = $1") if has("agent") else 0,
        "workflows.json": await count("SELECT count(*) FROM workflow WHERE org_id = $1") if has("workflow") else 0,
        "connections.json": await count("SELECT count(*) FROM connection WHERE org_id = $1") if has("connection") else 0,
        "invites.json": (
            await su.fetchval(
                """SELECT count(*) FROM invite WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
                   AND superseded_at IS NULL AND expires_at > $2""",
                org_id, clock.now(),
            )
            if has("invite")
            else 0
        ),
        # every event except the completion and downloads of this very export (written after it)
        "audit_log.jsonl": await su.fetchval(
            """SELECT count(*) FROM audit_event WHERE org_id = $1
               AND NOT (action IN ('export.completed', 'export.downloaded') AND target_id = $2)""",
            org_id, str(job_id),
        ),
    }
    return counts


async def request_export(client, org) -> UUID:
    r = await client.post(f"/orgs/{org.slug}/exports")
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert r.headers["location"] == f"/orgs/{org.slug}/exports"
    page = await client.get(f"/orgs/{org.slug}/exports")
    ids = re.findall(r'id="export-([0-9a-f-]{36})"', page.text)
    assert ids, "the new export is listed"
    return UUID(ids[0])


async def export_and_download(client, org, worker: ExportWorker | None = None) -> tuple[UUID, bytes, object]:
    job_id = await request_export(client, org)
    worker = worker or ExportWorker()
    assert await worker.run_once(org_id=org.id) == job_id
    r = await client.get(f"/orgs/{org.slug}/exports/{job_id}/download")
    assert r.status_code == 200, (r.status_code, r.text[:500])
    return job_id, r.content, r


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def records_of(name: str, content: bytes) -> list:
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in content.decode().splitlines()]
    value = json.loads(content)
    return value if isinstance(value, list) else [value]


def verify_archive(data: bytes) -> tuple[dict, dict[str, bytes]]:
    """Unzip, check the manifest against its schema, every file's SHA-256, size and record count
    against the manifest, and every record against the file's documented schema."""
    files = unzip(data)
    names = list(files)
    assert names[-1] == MANIFEST, "the manifest is written last"
    manifest = json.loads(files[MANIFEST])
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    listed = [f["name"] for f in manifest["files"]]
    assert listed == FILES == names[:-1]
    for entry in manifest["files"]:
        content = files[entry["name"]]
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["name"]
        assert len(content) == entry["bytes"], entry["name"]
        exporter = EXPORTERS[entry["name"]]
        if exporter.layout == "lines":
            jsonschema.validate(records_of(entry["name"], content), {"type": "array", "items": exporter.record_schema})
        else:
            jsonschema.validate(json.loads(content), exporter.file_schema())
        assert len(records_of(entry["name"], content)) == entry["records"], entry["name"]
    return manifest, files
