"""Exports end to end, for the export and deletion tests (no tests here): request one, run it,
download it, and check an archive against its manifest and the documented format. (Seeding an
org with every kind of record is ``tests.factories.seed``; pausing a job midway is in
``tests.concurrency``.)"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from uuid import UUID

import jsonschema

from portal import clock
from portal.exports.exporters import EXPORTERS
from portal.exports.format import MANIFEST, MANIFEST_SCHEMA
from portal.exports.worker import ExportWorker
from tests.factories import has

FILES = [
    "organization.json",
    "members.json",
    "teams.json",
    "agents.json",
    "workflows.json",
    "connections.json",
    "roles.json",
    "invites.json",
    "audit_log.jsonl",
]


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
        "roles.json": await count("SELECT count(*) FROM org_role WHERE org_id = $1") if has("org_role") else 0,
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
