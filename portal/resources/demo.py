"""`portal demo`: agents, workflows, connections and teams for the demo organization."""

from __future__ import annotations

import json
import secrets
from uuid import UUID

from portal.resources.agents.service import AGENTS
from portal.resources.connections.service import CONNECTIONS
from portal.resources.teams.service import TEAMS
from portal.resources.teams.service import add_member
from portal.resources.workflows.service import WORKFLOWS
from portal.tenancy.context import Org, OrgContext
from portal.tenancy.permissions import MATRIX, Role
from portal.tenancy.scope import TenantScope

DEMO_AGENTS = [
    ("Support triage", "claude-sonnet-4-5", "active", "Reads new support tickets, tags them and routes them to the right queue."),
    ("Release notes writer", "gpt-4.1", "active", "Turns the week's merged pull requests into customer-facing release notes."),
    ("Invoice reconciler", "claude-haiku-4-5", "paused", "Matches supplier invoices against purchase orders and flags mismatches."),
    ("Security alert summarizer", "gemini-2.5-pro", "active", "Condenses critical security alerts into a short brief for the on-call engineer."),
]
DEMO_WORKFLOWS = [
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
DEMO_CONNECTIONS = [
    ("Anthropic production", "anthropic", {"base_url": "https://api.anthropic.com"}, True),
    ("OpenAI production", "openai", {"base_url": "https://api.openai.com/v1", "organization": "org-acme"}, True),
    ("Slack #ops-alerts", "slack", {"workspace": "acme", "default_channel": "#ops-alerts"}, True),
    ("Analytics warehouse", "postgres", {"host": "warehouse.acme.internal", "port": 5432, "database": "analytics", "user": "agents_ro"}, False),
]
DEMO_TEAMS = [
    ("Platform", "Owns the agents' infrastructure and release process.", ["dana@acme.example", "kofi@acme.example", "ines@acme.example"]),
    ("Finance operations", "Invoices, reconciliation and spend.", ["bilal@acme.example"]),
    ("Trust & Safety", "Reviews agent behaviour and security alerts.", ["chen@acme.example", "ines@acme.example"]),
]


async def owner_context(scope: TenantScope, owner_id: UUID, owner_email: str) -> OrgContext:
    """The owner's context in the demo org, for demo content created the way the pages create it."""
    membership_id = await scope.fetchval("SELECT id FROM membership WHERE org_id = {org} AND user_id = $1", owner_id)
    return OrgContext(
        org=Org(id=scope.org_id, slug="", name=""), membership_id=membership_id, role=Role.OWNER, perms=MATRIX[Role.OWNER],
        user_id=owner_id, user_email=owner_email, user_name="", ip="127.0.0.1", scope=scope,
    )


async def demo_resources(scope: TenantScope, owner_id: UUID, owner_email: str) -> None:
    """Create the demo content the way the pages do: each item through its resource's ``create``
    (the same validation, the same audit events), acting as the owner."""
    ctx = await owner_context(scope, owner_id, owner_email)
    agents: dict[str, UUID] = {}
    for name, model, status, description in DEMO_AGENTS:
        agents[name] = await AGENTS.create(ctx, {"name": name, "model": model, "status": status, "description": description})
    for name, agent, enabled, description, definition in DEMO_WORKFLOWS:
        form = {"name": name, "agent_id": str(agents[agent]), "enabled": "1" if enabled else "", "description": description}
        await WORKFLOWS.create(ctx, {**form, "definition": json.dumps(definition)})
    for name, kind, config, with_secret in DEMO_CONNECTIONS:
        # A random value nobody knows: demo secrets exist only to show "set" and "replace".
        secret = secrets.token_urlsafe(24) if with_secret else ""
        await CONNECTIONS.create(ctx, {"name": name, "kind": kind, "config": json.dumps(config), "secret": secret})
    members = {
        r["email"]: r["id"]
        for r in await scope.fetch(
            "SELECT m.id, u.email FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.org_id = {org}"
        )
    }
    for name, description, emails in DEMO_TEAMS:
        team_id = await TEAMS.create(ctx, {"name": name, "description": description})
        for email in emails:
            if email in members:
                await add_member(ctx, team_id, {"membership_id": str(members[email])})
