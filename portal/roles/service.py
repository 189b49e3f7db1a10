"""Custom roles: declared once as a resource (the roles pages, the audit diff, the export), and
the rules that keep them contained.

**Containment.** Whoever manages members without being the owner (a custom role with
``members.manage``) may only hand out, edit or delete roles whose permissions they hold
themselves, may only change or remove members whose role is within their own permissions, never
touches the owner, and never edits the role they hold. ``RoleChoice.within`` is the one rule;
the owner holds every grantable permission, so it never stops them.

**Race-freedom.** A member's permissions are read with the membership on every request
(``enter_org``), the role row locked ``FOR SHARE`` by unsafe requests; editing a role locks it
``FOR UPDATE``. An action that checked a permission commits before the edit, or waits for it and
is checked again under the new permissions.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from portal import records
from portal.errors import Forbidden, Invalid, NotFound
from portal.params import parse_id
from portal.resources import layer
from portal.resources.common import FormErrors
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import (
    ASSIGNABLE_ROLES,
    BUILT_IN_CHOICES,
    BUILT_IN_ROLES,
    GRANTABLE,
    MATRIX,
    PERM_TEXT,
    Perm,
    Role,
    RoleChoice,
)
from portal.web.forms import getall

HOLDERS_SHOWN = 50
BEYOND_YOU = "You can't give a role permissions you don't have yourself."


def _read_permissions(form: layer.Form, errors: FormErrors) -> list[str]:
    chosen: set[str] = set()
    for raw in getall(form, "permissions"):
        if raw == Perm.VIEW:
            continue  # every role has it
        if raw == Perm.MANAGE_ORG:
            errors["permissions"] = "Managing the organization (settings, transfer, deletion) stays with the owner."
        elif raw in GRANTABLE:
            chosen.add(raw)
        else:
            errors["permissions"] = "Choose permissions from the list."
    return sorted(chosen)


PERMISSIONS = layer.Field(
    "permissions", _read_permissions, cast="::varchar(32)[]", of_row=lambda stored: sorted(stored or ())
)


def describe(perms: Any) -> list[str]:
    """The permission names a role carries, in the checklist's order (for lists and messages)."""
    held = set(perms or ())
    return [PERM_TEXT[p][0] for p in (Perm.VIEW, *GRANTABLE) if p == Perm.VIEW or p in held]


class Roles(layer.Resource):
    noun, plural, title, title_plural, alias = "role", "roles", "Custom role", "Roles", "r"
    table = "org_role"
    intro = (
        "A role is a set of permissions. The built-in roles come with Praesidia; custom roles are "
        "your organization's own, for people who need something in between."
    )
    search_hint = "Role name or description"
    view_permission = manage_permission = Perm.MANAGE_MEMBERS
    columns = """r.id, r.name, r.description, r.permissions, r.created_at, r.updated_at,
                 (SELECT count(*) FROM membership m WHERE m.org_id = {org} AND m.custom_role_id = r.id) AS holders,
                 (SELECT count(*) FROM invite i WHERE i.org_id = {org} AND i.custom_role_id = r.id
                    AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.superseded_at IS NULL) AS invites,
                 (SELECT count(*) FROM api_token t WHERE t.org_id = {org} AND t.custom_role_id = r.id
                    AND t.revoked_at IS NULL) AS tokens"""
    search = ("r.name", "r.description")
    fields = (layer.name("role"), layer.DESCRIPTION, PERMISSIONS)
    export = layer.Export(
        "roles.json",
        "The organization's custom roles and their permissions (org.view is part of every role).",
        layer.export_fields(
            layer.EXPORTED_DESCRIPTION,
            records.Field("permissions", records.array_of(records.enum(*GRANTABLE)), convert=lambda v: sorted(v or ())),
        ),
    )
    before_list = True
    blocker_detail = "holder_list"
    created_message = "Role created. Give it to people from the members page or with an invite."
    in_use_meanwhile = "“{name}” was given to someone meanwhile. Give them another role first."

    # -- containment ------------------------------------------------------------------------------
    async def check(self, ctx: OrgContext, values: dict[str, Any], errors: FormErrors, current: Any) -> None:
        if not set(values.get("permissions", ())) - {Perm.LEAVE} <= ctx.perms:
            raise Forbidden(BEYOND_YOU)
        name = " ".join(str(values.get("name") or "").lower().replace("_", " ").split())
        if name in BUILT_IN_NAMES:  # SCIM and the API name roles: a custom one must never read as a built-in one
            errors["name"] = "That is the name of a built-in role. Choose another."

    def guard(self, ctx: OrgContext, row: Any) -> None:
        if row["id"] == ctx.custom_role_id:
            raise Forbidden("You can't change or delete the role you hold. Ask the owner.")
        if not of_row(row).within(ctx.perms):
            raise Forbidden("This role has permissions you don't have, so you can't change or delete it.")

    # -- pages -------------------------------------------------------------------------------------
    def list_context(self) -> dict[str, Any]:
        return {
            "built_in": [(BUILT_IN_CHOICES[role], describe(MATRIX[role])) for role in BUILT_IN_ROLES],
            "describe": describe,
        }

    def form_defaults(self, query: Any) -> dict[str, Any]:
        return {"name": "", "description": "", "permissions": []}

    def form_of(self, row: Any) -> dict[str, Any]:
        return {"name": row["name"], "description": row["description"], "permissions": list(row["permissions"] or ())}

    def shown_form(self, form: Any) -> dict[str, Any]:
        return {**form, "permissions": [p for p in getall(form, "permissions") if p in GRANTABLE]}

    def resubmitted(self, form: Any, row: Any) -> dict[str, Any]:
        return self.shown_form(form)

    async def form_context(self, ctx: OrgContext, form: dict[str, Any], row: Any) -> dict[str, Any]:
        return {"checklist": checklist(ctx)}

    async def detail_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        return {"holders": await holders_of(ctx, row), "permission_names": describe(row["permissions"])}

    async def confirm_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        return {"holders": await holders_of(ctx, row) if row["holders"] else []}

    def in_use(self, row: Any) -> str | None:
        return self.delete_blocker(row)

    def delete_blocker(self, row: Any) -> str | None:
        holders, invites, tokens = row["holders"], row["invites"], row["tokens"]
        if not holders and not invites and not tokens:
            return None
        held = [f"{holders} member{'s' if holders != 1 else ''}"] if holders else []
        held += [f"{invites} pending invite{'s' if invites != 1 else ''}"] if invites else []
        held += [f"{tokens} API token{'s' if tokens != 1 else ''}"] if tokens else []
        return (
            f"“{row['name']}” is held by {', '.join(held[:-1]) + ' and ' if len(held) > 1 else ''}{held[-1]}. "
            "Give the members another role and revoke the invites and tokens before deleting it; its page lists who holds it."
        )

    def delete_consequence(self, row: Any) -> str:
        return "Nobody holds this role; deleting it changes no one's access."

    def delete_question(self, row: Any) -> str:
        return f"Delete the role “{row['name']}”? Nobody holds it."


ROLES = Roles()


async def holders_of(ctx: OrgContext, row: Any) -> list:
    """Who holds the role, by name (the first ``HOLDERS_SHOWN``)."""
    return await ctx.scope.fetch(
        """SELECT m.id, u.name, u.email FROM membership m JOIN app_user u ON u.id = m.user_id
           WHERE m.org_id = {org} AND m.custom_role_id = $1 ORDER BY lower(u.name), u.email LIMIT $2""",
        row["id"], HOLDERS_SHOWN,
    )


BUILT_IN_NAMES = {" ".join(n.replace("_", " ").split()) for r in Role for n in (r.value, r.label.lower())}


def checklist(ctx: OrgContext) -> list[tuple[Perm, str, str, bool]]:
    """The roles form's permissions: (permission, name, explanation, may the actor grant it).
    Like ``RoleChoice.within``: "leave" is anyone's to give (the owner is the one who can't leave)."""
    return [(perm, *PERM_TEXT[perm], perm in ctx.perms or perm == Perm.LEAVE) for perm in GRANTABLE]


def of_row(row: Any) -> RoleChoice:
    """The role a membership or invite row holds (columns ``role``, ``custom_role_id``,
    ``role_name``, ``role_permissions``), or a role row itself (``id``, ``name``, ``permissions``)."""
    if "permissions" in row.keys():
        return RoleChoice.custom(row["id"], row["name"], row["permissions"])
    role = Role(row["role"])
    if role is Role.CUSTOM:
        return RoleChoice.custom(row["custom_role_id"], row["role_name"] or "", row["role_permissions"])
    return BUILT_IN_CHOICES[role]


# -- choosing a role (members page, invites) ------------------------------------------------------
# The org's custom roles as one JSON value, for a page's own statement to carry (no extra one).
CUSTOM_ROLES_JSON = """(SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name, 'permissions', r.permissions)
                                           ORDER BY lower(r.name), r.id), '[]'::jsonb)
                        FROM org_role r WHERE r.org_id = {org})"""


def _grantable(ctx: OrgContext, customs: list[RoleChoice]) -> list[RoleChoice]:
    """The built-in assignable roles, then ``customs``, as far as ``ctx`` may grant them."""
    return [c for c in (*(BUILT_IN_CHOICES[r] for r in ASSIGNABLE_ROLES), *customs) if c.within(ctx.perms)]


def menu(ctx: OrgContext, custom_roles_json: str) -> list[tuple[str, str]]:
    """A role menu's (value, label) pairs, from ``CUSTOM_ROLES_JSON``'s value (read by the page's
    own statement)."""
    customs = [RoleChoice.custom(UUID(r["id"]), r["name"], r["permissions"]) for r in json.loads(custom_roles_json)]
    return [(c.key, c.label) for c in _grantable(ctx, customs)]


async def choices(ctx: OrgContext) -> list[RoleChoice]:
    """The roles ``ctx`` may hand out here: the built-in ones, then the org's own, by name."""
    rows = await ctx.scope.fetch("SELECT id, name, permissions FROM org_role WHERE org_id = {org} ORDER BY lower(name), id")
    return _grantable(ctx, [RoleChoice.custom(r["id"], r["name"], r["permissions"]) for r in rows])


def _not_a_role(field: str) -> Invalid:
    return Invalid("Choose a role from the list.", field_errors={field: "Choose a role from the list."})


async def resolve_choice(ctx: OrgContext, raw: str, *, field: str = "role") -> RoleChoice:
    """The role the form chose, checked against what ``ctx`` may grant. A custom role is locked
    ``FOR SHARE`` for the rest of the transaction: it cannot gain a permission, or be deleted,
    before the grant commits."""
    raw = str(raw or "").strip()
    if raw == Role.OWNER:
        raise Invalid(
            "Ownership can't be given like this. Use “Transfer ownership” in the organization's settings.",
            field_errors={field: "Choose a role other than owner."},
        )
    if raw in Role._value2member_map_ and raw != Role.CUSTOM:
        choice = BUILT_IN_CHOICES[Role(raw)]
    else:
        try:
            role_id = parse_id(raw)
        except NotFound:
            raise _not_a_role(field) from None
        row = await ctx.scope.fetchrow(
            "SELECT id, name, permissions FROM org_role WHERE org_id = {org} AND id = $1 FOR SHARE", role_id
        )
        if row is None:
            raise _not_a_role(field)
        choice = of_row(row)
    if not choice.within(ctx.perms):
        raise Forbidden("You can't grant a role with permissions you don't have.")
    return choice


def role_fields(choice: RoleChoice) -> dict[str, str]:
    """A role as audit events record it: the built-in role's name, or "custom" with the role's
    id and its name at the time."""
    if choice.custom_role_id is None:
        return {"role": choice.role.value}
    return {"role": Role.CUSTOM.value, "custom_role_id": str(choice.custom_role_id), "role_name": choice.label}


def require_within(ctx: OrgContext, held: RoleChoice, what: str) -> None:
    """Refuse to act on someone (or an invite) whose role goes beyond ``ctx``'s permissions."""
    if not held.within(ctx.perms) and held.role is not Role.OWNER:
        raise Forbidden(f"You can't {what}: their role has permissions you don't have.")
