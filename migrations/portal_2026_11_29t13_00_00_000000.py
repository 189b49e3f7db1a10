"""Organization data exports: the job queue and the archives, chunked in PostgreSQL.

Both tables are tenant tables (RLS, cascade from the organization), so deleting an org deletes its
archives in the same transaction. One extra, read-only policy lets the export worker see which
jobs exist across orgs (never any archive data) while it explicitly says so in its own transaction;
it then claims a job inside that job's tenant transaction (``FOR UPDATE SKIP LOCKED``).
"""

from portal.db.ddl import raw_migration, tenant_rls

ID = "2026-11-29T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "export jobs and archive chunks"

SQL = f"""
CREATE TABLE export_job (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    requested_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    requested_by_email varchar(320) NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
    progress integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    records_done bigint NOT NULL DEFAULT 0 CHECK (records_done >= 0),
    records_total bigint NOT NULL DEFAULT 0 CHECK (records_total >= 0),
    error text,
    size_bytes bigint CHECK (size_bytes >= 0),
    sha256 varchar(64),
    filename varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    expires_at timestamptz,
    heartbeat_at timestamptz,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- An archive is offered only when it is complete.
    CONSTRAINT export_job_done_is_complete CHECK (
        status <> 'done' OR (size_bytes IS NOT NULL AND sha256 IS NOT NULL AND filename IS NOT NULL AND expires_at IS NOT NULL)
    ),
    -- target of the chunks' composite foreign key
    CONSTRAINT export_job_org_id_id UNIQUE (org_id, id)
);
-- The org's export history (newest first) and the rate-limit window.
CREATE INDEX export_job_org_created ON export_job (org_id, created_at DESC);
-- The worker's queue: jobs to run (or to recover), and archives to purge.
CREATE INDEX export_job_pending ON export_job (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX export_job_expiring ON export_job (expires_at) WHERE status = 'done';
{tenant_rls("export_job")}
-- The worker discovers work across orgs only while its own transaction sets app.export_worker;
-- reading, never writing, and only job metadata (export_chunk has no such policy).
CREATE POLICY export_worker_queue ON export_job FOR SELECT
    USING (current_setting('app.export_worker', true) = 'on');

CREATE TABLE export_chunk (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    job_id uuid NOT NULL,
    seq integer NOT NULL CHECK (seq >= 0),
    data bytea NOT NULL,
    CONSTRAINT export_chunk_job FOREIGN KEY (org_id, job_id) REFERENCES export_job (org_id, id) ON DELETE CASCADE,
    CONSTRAINT export_chunk_org_job_seq UNIQUE (org_id, job_id, seq)
);
-- ZIP data is already compressed: store it out of line without another compression pass.
ALTER TABLE export_chunk ALTER COLUMN data SET STORAGE EXTERNAL;
{tenant_rls("export_chunk")}
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
