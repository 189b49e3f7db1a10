"""Roles and permissions: SPEC §2 in one table, and the custom roles of SPEC §13 layered on it.
Routes name a permission, never a role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable
from uuid import UUID


class Role(StrEnum):
    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    COMPLIANCE_OFFICER = "compliance_officer"
    MEMBER = "member"
    CUSTOM = "custom"  # one of the org's own roles (``membership.custom_role_id`` names it)

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.OWNER: "Owner",
    Role.BILLING_ADMIN: "Billing admin",
    Role.COMPLIANCE_OFFICER: "Compliance officer",
    Role.MEMBER: "Member",
    Role.CUSTOM: "Custom role",
}

BUILT_IN_ROLES = (Role.OWNER, Role.MEMBER, Role.BILLING_ADMIN, Role.COMPLIANCE_OFFICER)

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
    # An agent's own token (portal.api.agent): read its agent, its workflows, their connections'
    # non-secret config; record agent.* events. No role of a person carries it, none can grant it.
    AGENT = "agent.self"
    # A SCIM token (portal.scim): the org's identity provider provisioning members and teams.
    SCIM = "scim.provision"


MATRIX: dict[Role, frozenset[Perm]] = {
    Role.OWNER: frozenset(
        {Perm.VIEW, Perm.MANAGE_RESOURCES, Perm.BILLING, Perm.AUDIT, Perm.EXPORT, Perm.MANAGE_MEMBERS, Perm.MANAGE_ORG}
    ),
    Role.BILLING_ADMIN: frozenset({Perm.VIEW, Perm.BILLING, Perm.LEAVE}),
    Role.COMPLIANCE_OFFICER: frozenset({Perm.VIEW, Perm.AUDIT, Perm.EXPORT, Perm.LEAVE}),
    Role.MEMBER: frozenset({Perm.VIEW, Perm.MANAGE_RESOURCES, Perm.LEAVE}),
}


# What a custom role may carry. ``org.view`` comes with every role; ``org.manage`` (settings,
# ownership transfer, deletion) stays with the owner alone.
GRANTABLE = (Perm.MANAGE_RESOURCES, Perm.BILLING, Perm.AUDIT, Perm.EXPORT, Perm.MANAGE_MEMBERS, Perm.LEAVE)

# Each permission in plain words, for the roles page's checklist and the built-in roles' lists.
PERM_TEXT: dict[Perm, tuple[str, str]] = {
    Perm.VIEW: ("See the organization", "The dashboard, the member list, agents, workflows, connections and teams."),
    Perm.MANAGE_RESOURCES: ("Manage resources", "Create, edit and delete agents, workflows, connections and teams."),
    Perm.BILLING: ("Manage billing", "See and change the plan, billing email, seat limit and spend cap."),
    Perm.AUDIT: ("See the audit log", "The audit log, its CSV download and the access report."),
    Perm.EXPORT: ("Export data", "Request and download exports of the organization's data."),
    Perm.MANAGE_MEMBERS: (
        "Manage members",
        "Invite people, change roles, remove members and manage custom roles, never beyond their own permissions.",
    ),
    Perm.MANAGE_ORG: ("Manage the organization", "Settings, ownership transfer and deletion: the owner's alone."),
    Perm.LEAVE: ("Leave", "Leave the organization on their own."),
    Perm.SCIM: ("Provision through SCIM", "SCIM tokens only: the identity provider creates, changes and removes members and teams."),
    Perm.AGENT: ("Act as an agent", "Agent tokens only: their own agent, its workflows and connections, and its audit events."),
}


def allowed(role: str, perm: Perm) -> bool:
    """Whether a built-in role carries ``perm`` (a custom role's set is read with the membership)."""
    try:
        return perm in MATRIX[Role(role)]
    except (ValueError, KeyError):
        return False


def custom_permissions(stored: Iterable[str] | None) -> frozenset[Perm]:
    """A custom role's permissions as stored, with ``org.view`` that every role has."""
    return frozenset({Perm.VIEW, *(Perm(p) for p in stored or ())})


@dataclass(frozen=True)
class RoleChoice:
    """A role as one assigns it (members page, invites): a built-in role or one of the org's own."""

    key: str  # the built-in role's name, or the custom role's id: the value forms post
    role: Role
    label: str
    perms: frozenset[Perm]
    custom_role_id: UUID | None = None

    @classmethod
    def custom(cls, role_id: UUID, name: str, stored: Iterable[str] | None) -> RoleChoice:
        return cls(str(role_id), Role.CUSTOM, name, custom_permissions(stored), role_id)

    def within(self, perms: frozenset[Perm]) -> bool:
        """Whether someone holding ``perms`` may grant this role: never ownership (it is
        transferred), and no permission they lack (leaving aside "leave", the one thing an
        owner cannot do)."""
        return self.role != Role.OWNER and (self.perms - {Perm.LEAVE}) <= perms


BUILT_IN_CHOICES = {
    role: RoleChoice(role.value, role, ROLE_LABELS[role], MATRIX[role]) for role in (*ASSIGNABLE_ROLES, Role.OWNER)
}
