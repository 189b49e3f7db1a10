"""Every action the portal records in the audit log, in one enum.

``audit.record`` takes an ``Action``; the log's action filter offers ``Action`` as suggestions
(any action can still be typed, e.g. one recorded by an older version).
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ORG_CREATED = "org.created"
    ORG_RENAMED = "org.renamed"
    ORG_OWNERSHIP_TRANSFERRED = "org.ownership_transferred"

    MEMBER_JOINED = "member.joined"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    MEMBER_LEFT = "member.left"
    MEMBER_SUSPENDED = "member.suspended"  # by the org's identity provider (SCIM active=false)
    MEMBER_REACTIVATED = "member.reactivated"
    MEMBER_SCIM_UPDATED = "member.scim_updated"  # name, emails, externalId … as the IdP keeps them

    INVITE_CREATED = "invite.created"
    INVITE_RESENT = "invite.resent"
    INVITE_REVOKED = "invite.revoked"
    INVITE_ACCEPTED = "invite.accepted"

    AGENT_CREATED = "agent.created"
    AGENT_UPDATED = "agent.updated"
    AGENT_DELETED = "agent.deleted"
    AGENT_TOKEN_CREATED = "agent.token_created"
    AGENT_TOKEN_REVOKED = "agent.token_revoked"
    # Recorded by an agent itself, with its own token (portal.api.agent.EVENTS).
    AGENT_RUN_STARTED = "agent.run_started"
    AGENT_RUN_FINISHED = "agent.run_finished"
    AGENT_RUN_FAILED = "agent.run_failed"
    AGENT_TOOL_CALLED = "agent.tool_called"
    AGENT_APPROVAL_REQUESTED = "agent.approval_requested"

    WORKFLOW_CREATED = "workflow.created"
    WORKFLOW_UPDATED = "workflow.updated"
    WORKFLOW_DELETED = "workflow.deleted"

    CONNECTION_CREATED = "connection.created"
    CONNECTION_UPDATED = "connection.updated"
    CONNECTION_DELETED = "connection.deleted"
    CONNECTION_SECRET_REPLACED = "connection.secret_replaced"
    CONNECTION_SECRET_CLEARED = "connection.secret_cleared"

    TEAM_CREATED = "team.created"
    TEAM_UPDATED = "team.updated"
    TEAM_DELETED = "team.deleted"
    TEAM_MEMBER_ADDED = "team.member_added"
    TEAM_MEMBER_REMOVED = "team.member_removed"

    API_TOKEN_CREATED = "api_token.created"
    API_TOKEN_REVOKED = "api_token.revoked"
    SCIM_TOKEN_CREATED = "scim_token.created"
    SCIM_TOKEN_REVOKED = "scim_token.revoked"

    ROLE_CREATED = "role.created"
    ROLE_UPDATED = "role.updated"
    ROLE_DELETED = "role.deleted"

    BILLING_UPDATED = "billing.updated"

    EXPORT_REQUESTED = "export.requested"
    EXPORT_COMPLETED = "export.completed"
    EXPORT_FAILED = "export.failed"
    EXPORT_DOWNLOADED = "export.downloaded"


KNOWN_ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)
