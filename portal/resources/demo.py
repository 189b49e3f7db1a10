"""`portal demo`: agents, workflows, connections and teams for the demo organization."""

from __future__ import annotations

import json
import secrets
import uuid
from uuid import UUID

from portal.audit import service as audit
from portal.resources import crypto
from portal.tenancy.scope import TenantScope

AGENTS = [
    ("Support triage", "claude-sonnet-4-5", "active", "Reads new support tickets, tags them and routes them to the right queue."),
    ("Release notes writer", "gpt-4.1", "active", "Turns the week's merged pull requests into customer-facing release notes."),
    ("Invoice reconciler", "claude-haiku-4-5", "paused", "Matches supplier invoices against purchase orders and flags mismatches."),
    ("Security alert summarizer", "gemini-2.5-pro", "active", "Condenses critical security alerts into a short brief for the on-call engineer."),
]
WORKFLOWS = [
    (
        "Ticket routing", "Support triage", True, "Runs for every ticket the help desk receives.",
        {
            "trigger": {"type": "webhook"},
            "inputs": {"ticket_id": "string"},
            "steps": [
                {"id": "classify", "type": "prompt", "prompt": "Classify the ticket by product area and urgency.", "next": "assign"},
                {"id": "assign", "type": "tool", "tool": "helpdesk.assign", "next": "notify"},
                {"id": "notify", "type": "notify", "channel": "#support-queue"},
            ],
            "timeout_seconds": 120,
        },
    ),
    (
        "Weekly release notes", "Release notes writer", True, "Drafts release notes every Friday afternoon for review.",
        {
            "trigger": {"type": "schedule", "cron": "0 16 * * 5"},
            "steps": [
                {"id": "collect", "type": "tool", "tool": "github.merged_pull_requests", "next": "draft"},
                {"id": "draft", "type": "prompt", "prompt": "Write release notes for these changes.", "next": "review"},
                {"id": "review", "type": "approval", "approvers": ["team:Platform"]},
            ],
        },
    ),
    (
        "Month-end reconciliation", "Invoice reconciler", False, "Paused until the finance team signs off the new rules.",
        {
            "trigger": {"type": "schedule", "cron": "0 6 1 * *"},
            "steps": [
                {"id": "fetch", "type": "http", "method": "GET", "url": "https://erp.internal/api/invoices", "next": "match"},
                {"id": "match", "type": "prompt", "prompt": "Match each invoice to its purchase order."},
            ],
            "timeout_seconds": 3600,
        },
    ),
    (
        "Critical alert digest", "Security alert summarizer", True, "",
        {
            "trigger": {"type": "event", "event": "alert.critical"},
            "steps": [
                {"id": "summarize", "type": "prompt", "prompt": "Summarize the alert and likely impact.", "next": "page"},
                {"id": "page", "type": "notify", "channel": "#security-oncall"},
            ],
        },
    ),
]
CONNECTIONS = [
    ("Anthropic production", "anthropic", {"base_url": "https://api.anthropic.com"}, True),
    ("OpenAI production", "openai", {"base_url": "https://api.openai.com/v1", "organization": "org-acme"}, True),
    ("Slack #ops-alerts", "slack", {"workspace": "acme", "default_channel": "#ops-alerts"}, True),
    ("Analytics warehouse", "postgres", {"host": "warehouse.acme.internal", "port": 5432, "database": "analytics", "user": "agents_ro"}, False),
]
TEAMS = [
    ("Platform", "Owns the agents' infrastructure and release process.", ["dana@acme.example", "kofi@acme.example", "ines@acme.example"]),
    ("Finance operations", "Invoices, reconciliation and spend.", ["bilal@acme.example"]),
    ("Trust & Safety", "Reviews agent behaviour and security alerts.", ["chen@acme.example", "ines@acme.example"]),
]


async def demo_resources(scope: TenantScope, owner_id: UUID, owner_email: str) -> None:
    async def record(action: str, kind: str, target_id: UUID, label: str, after: dict) -> None:
        await audit.record_as(
            scope, actor_id=owner_id, actor_email=owner_email, ip="127.0.0.1", action=action,
            target=(kind, target_id, label), after=after,
        )

    agents: dict[str, UUID] = {}
    for name, model, status, description in AGENTS:
        agents[name] = await scope.fetchval(
            """INSERT INTO agent (org_id, name, description, model, status, created_by)
               VALUES ({org}, $1, $2, $3, $4, $5) RETURNING id""",
            name, description, model, status, owner_id,
        )
        await record("agent.created", "agent", agents[name], name, {"name": name, "model": model, "status": status})
    for name, agent, enabled, description, definition in WORKFLOWS:
        workflow_id = await scope.fetchval(
            """INSERT INTO workflow (org_id, name, description, definition, agent_id, enabled, created_by)
               VALUES ({org}, $1, $2, $3::jsonb, $4, $5, $6) RETURNING id""",
            name, description, json.dumps(definition), agents[agent], enabled, owner_id,
        )
        await record("workflow.created", "workflow", workflow_id, name, {"name": name, "agent_id": str(agents[agent]), "enabled": enabled})
    for name, kind, config, with_secret in CONNECTIONS:
        connection_id = uuid.uuid4()
        # A random value nobody knows: demo secrets exist only to show "set" and "replace".
        ciphertext = crypto.encrypt(secrets.token_urlsafe(24), org_id=scope.org_id, connection_id=connection_id) if with_secret else None
        await scope.execute(
            """INSERT INTO connection (id, org_id, name, kind, config, secret_ciphertext, secret_set_at, created_by)
               VALUES ($1, {org}, $2, $3, $4::jsonb, $5, CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $6)""",
            connection_id, name, kind, json.dumps(config), ciphertext, owner_id,
        )
        await record("connection.created", "connection", connection_id, name, {"name": name, "kind": kind, "secret_set": with_secret})
    members = {
        r["email"]: r["id"]
        for r in await scope.fetch(
            "SELECT m.id, u.email FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.org_id = {org}"
        )
    }
    for name, description, emails in TEAMS:
        team_id = await scope.fetchval(
            "INSERT INTO team (org_id, name, description, created_by) VALUES ({org}, $1, $2, $3) RETURNING id",
            name, description, owner_id,
        )
        await record("team.created", "team", team_id, name, {"name": name})
        for email in emails:
            if email in members:
                await scope.execute(
                    "INSERT INTO team_member (org_id, team_id, membership_id, created_by) VALUES ({org}, $1, $2, $3)",
                    team_id, members[email], owner_id,
                )
                await record("team.member_added", "team", team_id, name, {"email": email, "membership_id": str(members[email])})
