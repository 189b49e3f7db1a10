"""The demo org's custom role (``make run``): created through the roles resource, like the page."""

from __future__ import annotations

from uuid import UUID

from portal.resources.demo import owner_context
from portal.roles.service import ROLES
from portal.tenancy.scope import TenantScope

DEMO_ROLE = {
    "name": "Auditor (read-only)",
    "description": "For reviewers from outside the team: the audit log, the access report and data exports, nothing else.",
    "permissions": ["audit.view", "export.use"],
}


async def demo_roles(scope: TenantScope, owner_id: UUID, owner_email: str) -> None:
    await ROLES.create(await owner_context(scope, owner_id, owner_email), DEMO_ROLE)
