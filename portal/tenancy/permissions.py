"""Roles and permissions: SPEC §2 in one table. Routes name a permission, never a role."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    COMPLIANCE_OFFICER = "compliance_officer"
    MEMBER = "member"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.OWNER: "Owner",
    Role.BILLING_ADMIN: "Billing admin",
    Role.COMPLIANCE_OFFICER: "Compliance officer",
    Role.MEMBER: "Member",
}

# Roles an owner can give by invite or role change: every role but owner (ownership is transferred).
ASSIGNABLE_ROLES = (Role.MEMBER, Role.BILLING_ADMIN, Role.COMPLIANCE_OFFICER)


class Perm(StrEnum):
    VIEW = "org.view"  # dashboard, members list, agents, workflows, connections, teams
    MANAGE_RESOURCES = "resources.manage"  # create/edit/delete agents, workflows, connections, teams
    BILLING = "billing.manage"  # view and change billing settings
    AUDIT = "audit.view"  # audit log, audit CSV, access report
    EXPORT = "export.use"  # request and download data exports
    MANAGE_MEMBERS = "members.manage"  # invite, resend/revoke invites, change roles, remove members
    MANAGE_ORG = "org.manage"  # org settings, transfer ownership, delete org
    LEAVE = "org.leave"  # leave the org (the owner must transfer first)


MATRIX: dict[Role, frozenset[Perm]] = {
    Role.OWNER: frozenset(
        {Perm.VIEW, Perm.MANAGE_RESOURCES, Perm.BILLING, Perm.AUDIT, Perm.EXPORT, Perm.MANAGE_MEMBERS, Perm.MANAGE_ORG}
    ),
    Role.BILLING_ADMIN: frozenset({Perm.VIEW, Perm.BILLING, Perm.LEAVE}),
    Role.COMPLIANCE_OFFICER: frozenset({Perm.VIEW, Perm.AUDIT, Perm.EXPORT, Perm.LEAVE}),
    Role.MEMBER: frozenset({Perm.VIEW, Perm.MANAGE_RESOURCES, Perm.LEAVE}),
}


def allowed(role: str, perm: Perm) -> bool:
    try:
        return perm in MATRIX[Role(role)]
    except ValueError:
        return False
