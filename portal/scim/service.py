"""The org's SCIM service: scim2-server's protocol steps over the org's memberships and teams.

scim2-server does the protocol (routing, request validation, PATCH application, ETags, error
bodies); ``OrgStorage`` is the org's data, read and written through the org's ``TenantScope``
inside the request's transaction, exactly like a page. Being built (issue 17): Users can be read
and searched; creating, changing and deleting them, and Groups, come next (``docs/scim.md``).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from scim2_models import (
    Context, Meta, NotFoundException, NotImplementedException, Resource, ResourceType, SearchRequest,
)
from scim2_server.service import ScimService
from scim2_server.storage import AsyncScimStorage, SearchPage

from portal.scim import models
from portal.scim.filters import Col, JsonItems, where_clause
from portal.tenancy.context import OrgContext

USER_COLUMNS = {
    ("id", None): Col("m.id::text"),
    ("user_name", None): Col("u.email"),
    ("external_id", None): Col("m.scim_external_id"),
    ("display_name", None): Col("coalesce(m.scim_display_name, u.name)"),
    ("active", None): Col("(m.suspended_at IS NULL)"),
    ("emails", None): JsonItems("m.scim_emails"),
    ("emails", "value"): JsonItems("m.scim_emails"),
    ("emails", "type"): JsonItems("m.scim_emails"),
}
_USER = """SELECT m.id, u.email, u.name, m.role, r.name AS role_name, m.suspended_at, m.scim_active, m.scim_external_id,
                  m.scim_display_name, m.scim_given_name, m.scim_family_name, m.scim_formatted_name, m.scim_emails,
                  m.scim_version, m.created_at, coalesce(m.scim_updated_at, m.created_at) AS updated_at
           FROM membership m JOIN app_user u ON u.id = m.user_id
           LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
           WHERE m.org_id = {org}"""


class PortalService(ScimService):
    def patch_response(self, base_url, resource, response_parameters):
        """200 with the resource (RFC 7644 §3.5.2 allows 204; IdP conformance probes want the resource)."""
        return self.resource_response(self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters)


def _user(row: Any) -> Resource:
    emails = json.loads(row["scim_emails"]) if isinstance(row["scim_emails"], str) else row["scim_emails"]
    name = None
    if row["scim_given_name"] or row["scim_family_name"] or row["scim_formatted_name"]:
        name = models.PortalName(given_name=row["scim_given_name"], family_name=row["scim_family_name"], formatted=row["scim_formatted_name"])
    user = models.OrgUser(
        id=str(row["id"]), user_name=row["email"], external_id=row["scim_external_id"], name=name,
        display_name=row["scim_display_name"] or row["name"], emails=[models.PortalEmail(**e) for e in emails] if emails else None,
        active=False if row["suspended_at"] else row["scim_active"],
    )
    role = row["role_name"] if row["role"] == "custom" else row["role"]
    if role != "member":  # absent means the default role
        user[models.PraesidiaUser] = models.PraesidiaUser(role=role)
    user.meta = Meta(resource_type="User", created=row["created_at"], last_modified=row["updated_at"], version=f'W/"{row["scim_version"]}"')
    return user


def _key(resource_id: str) -> UUID:
    try:
        return UUID(resource_id)
    except (ValueError, TypeError):
        raise NotFoundException(detail="No such resource in this organization.") from None


class OrgStorage(AsyncScimStorage):
    """One organization's Users (its memberships)."""

    def __init__(self, ctx: OrgContext) -> None:
        self.ctx = ctx

    async def get(self, resource_type: ResourceType, resource_id: str, *, response_parameters=None) -> Resource:
        if resource_type.name != "User":
            raise NotImplementedException(detail="Groups are not served yet.")
        row = await self.ctx.scope.fetchrow(_USER + " AND m.id = $1", _key(resource_id))
        if row is None:
            raise NotFoundException(detail="No such resource in this organization.")
        return _user(row)

    async def search(self, resource_types: list[ResourceType], search_request: SearchRequest, *, position=None) -> SearchPage:
        if len(resource_types) != 1 or resource_types[0].name != "User":
            raise NotImplementedException(detail="Only Users can be searched so far.")
        where, params = where_clause(search_request.filter, USER_COLUMNS)
        n = len(params)
        total = await self.ctx.scope.fetchval(
            f"SELECT count(*) FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.org_id = {{org}} AND {where}", *params
        )
        count = search_request.count if search_request.count is not None else 100
        rows = await self.ctx.scope.fetch(
            f"{_USER} AND {where} ORDER BY m.created_at, m.id OFFSET ${n + 1} LIMIT ${n + 2}",
            *params, search_request.start_index_0 or 0, count,
        )
        return SearchPage(total=total, resources=[_user(r) for r in rows])

    async def create(self, resource_type, resource):
        raise NotImplementedException(detail="Provisioning is being built.")

    async def update(self, resource_type, resource, *, expected_version=None):
        raise NotImplementedException(detail="Provisioning is being built.")

    async def delete(self, resource_type, resource_id, *, expected_version=None):
        raise NotImplementedException(detail="Provisioning is being built.")
