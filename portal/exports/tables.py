"""Export jobs and their archives (DDL: migrations/portal_2026_11_29t13_00_00_000000.py)."""

from __future__ import annotations

from piccolo.columns import UUID, BigInt, Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db.registry import tenant_table
from portal.db.tables import Organization

STATUSES = ("queued", "running", "done", "failed", "expired")


@tenant_table
class ExportJob(Table, tablename="export_job"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    requested_by = UUID(null=True)
    requested_by_email = Varchar(length=320)
    status = Varchar(length=16, default="queued")
    progress = Integer(default=0)
    records_done = BigInt(default=0)
    records_total = BigInt(default=0)
    error = Text(null=True, default=None)
    size_bytes = BigInt(null=True, default=None)
    sha256 = Varchar(length=64, null=True, default=None)
    filename = Varchar(length=200, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    heartbeat_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)


@tenant_table
class ExportChunk(Table, tablename="export_chunk"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    job_id = UUID()  # composite foreign key (org_id, job_id) -> export_job (org_id, id)
    seq = Integer()
    data = Bytea()
