"""The checked-in access table: what every route of the portal requires, written from SPEC §2 and
§7 (not read from the code). `tests/tenancy/test_isolation_matrix.py` walks the live route table
against it: a route missing here fails the suite until its row is added; and
`tests/tenancy/test_route_permissions.py` checks that every org route declares exactly the
permission its row names.

PUBLIC: anyone. SIGNED_IN: any signed-in user (not org-scoped). Otherwise the SPEC §2 permission
an org route needs; who holds it comes from SPEC_HOLDERS below (again SPEC §2, not the code).
"""

from __future__ import annotations

PUBLIC, SIGNED_IN = "public", "signed-in"
VIEW, MANAGE_RESOURCES, BILLING, AUDIT, EXPORT, MEMBERS, ORG, LEAVE = (
    "view", "manage-resources", "billing", "audit", "export", "manage-members", "manage-org", "leave",
)
AGENT = "agent"  # SPEC §11: an agent's own token, and no person's role
SCIM = "scim"  # SPEC §12: a SCIM token, and no person's role

# SPEC §2, row by row.
ROLES = ("owner", "billing_admin", "compliance_officer", "member")
SPEC_HOLDERS = {
    VIEW: {"owner", "billing_admin", "compliance_officer", "member"},
    MANAGE_RESOURCES: {"owner", "member"},
    BILLING: {"owner", "billing_admin"},
    AUDIT: {"owner", "compliance_officer"},
    EXPORT: {"owner", "compliance_officer"},
    MEMBERS: {"owner"},
    ORG: {"owner"},
    LEAVE: {"billing_admin", "compliance_officer", "member"},
    AGENT: set(),
    SCIM: set(),
}

ACCESS = {
    "GET /": PUBLIC,
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": PUBLIC,  # its own bearer (METRICS_TOKEN), not a session
    "GET /docs/api": PUBLIC,
    "GET /signup": PUBLIC,
    "POST /signup": PUBLIC,
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "GET /forgot-password": PUBLIC,
    "POST /forgot-password": PUBLIC,
    "GET /reset-password/{token}": PUBLIC,
    "POST /reset-password/{token}": PUBLIC,
    "GET /invites/{token}": PUBLIC,
    "GET /verify-email/{token}": PUBLIC,
    "GET /static/{file_path}": PUBLIC,
    "GET /api/v1": PUBLIC,  # the OpenAPI document, at the three paths Litestar serves it
    "GET /api/v1/openapi.json": PUBLIC,
    "GET /api/v1/{path}": PUBLIC,
    "POST /logout": SIGNED_IN,
    "GET /account": SIGNED_IN,
    "POST /account/sign-out-everywhere": SIGNED_IN,
    "POST /account/verify-email/resend": SIGNED_IN,
    "GET /account/data": SIGNED_IN,
    "POST /account/delete": SIGNED_IN,
    "POST /verify-email/{token}": SIGNED_IN,
    "GET /orgs": SIGNED_IN,
    "POST /orgs": SIGNED_IN,
    "POST /invites/{token}/accept": SIGNED_IN,
    # org routes
    "GET /orgs/{slug}": VIEW,
    "GET /orgs/{slug}/settings": ORG,
    "POST /orgs/{slug}/settings": ORG,
    "POST /orgs/{slug}/delete": ORG,
    "GET /orgs/{slug}/transfer": ORG,
    "POST /orgs/{slug}/transfer": ORG,
    "GET /orgs/{slug}/members": VIEW,
    "POST /orgs/{slug}/members/{member_id}/role": MEMBERS,
    "GET /orgs/{slug}/members/{member_id}/remove": MEMBERS,
    "POST /orgs/{slug}/members/{member_id}/remove": MEMBERS,
    "GET /orgs/{slug}/leave": VIEW,  # the owner is shown why they can't leave
    "POST /orgs/{slug}/leave": LEAVE,
    "GET /orgs/{slug}/invites": MEMBERS,
    "POST /orgs/{slug}/invites": MEMBERS,
    "GET /orgs/{slug}/invites/{invite_id}": MEMBERS,
    "POST /orgs/{slug}/invites/{invite_id}/resend": MEMBERS,
    "POST /orgs/{slug}/invites/{invite_id}/retry-mail": MEMBERS,
    "POST /orgs/{slug}/invites/{invite_id}/revoke": MEMBERS,
    "GET /orgs/{slug}/billing": BILLING,
    "POST /orgs/{slug}/billing": BILLING,
    "GET /orgs/{slug}/audit": AUDIT,
    "GET /orgs/{slug}/audit.csv": AUDIT,
    "GET /orgs/{slug}/access-report": AUDIT,
    "GET /orgs/{slug}/access-report.csv": AUDIT,
    "GET /orgs/{slug}/exports": EXPORT,
    "POST /orgs/{slug}/exports": EXPORT,
    "GET /orgs/{slug}/exports/{export_id}": EXPORT,
    "GET /orgs/{slug}/exports/{export_id}/download": EXPORT,
}
for _kind, _id in (("agents", "agent_id"), ("workflows", "workflow_id"), ("connections", "connection_id"), ("teams", "team_id")):
    ACCESS.update(
        {
            f"GET /orgs/{{slug}}/{_kind}": VIEW,
            f"GET /orgs/{{slug}}/{_kind}/{{{_id}}}": VIEW,
            f"GET /orgs/{{slug}}/{_kind}/new": MANAGE_RESOURCES,
            f"POST /orgs/{{slug}}/{_kind}": MANAGE_RESOURCES,
            f"GET /orgs/{{slug}}/{_kind}/{{{_id}}}/edit": MANAGE_RESOURCES,
            f"POST /orgs/{{slug}}/{_kind}/{{{_id}}}/edit": MANAGE_RESOURCES,
            f"GET /orgs/{{slug}}/{_kind}/{{{_id}}}/delete": MANAGE_RESOURCES,
            f"POST /orgs/{{slug}}/{_kind}/{{{_id}}}/delete": MANAGE_RESOURCES,
        }
    )
# SPEC §13: custom roles are managed by whoever manages members (the owner among built-in roles).
# SPEC §11: so are API tokens.
ACCESS.update(
    {
        "GET /orgs/{slug}/api-tokens": MEMBERS,
        "POST /orgs/{slug}/api-tokens": MEMBERS,
        "POST /orgs/{slug}/api-tokens/{token_id}/revoke": MEMBERS,
        "GET /orgs/{slug}/scim": ORG,
        "POST /orgs/{slug}/scim": ORG,
        "POST /orgs/{slug}/scim/{scim_token_id}/revoke": ORG,
        "POST /orgs/{slug}/scim/retry-welcomes": ORG,
        "POST /orgs/{slug}/agents/{agent_id}/tokens": MANAGE_RESOURCES,
        "POST /orgs/{slug}/agents/{agent_id}/tokens/{agent_token_id}/revoke": MANAGE_RESOURCES,
        "GET /orgs/{slug}/roles": MEMBERS,
        "GET /orgs/{slug}/roles/{role_id}": MEMBERS,
        "GET /orgs/{slug}/roles/new": MEMBERS,
        "POST /orgs/{slug}/roles": MEMBERS,
        "GET /orgs/{slug}/roles/{role_id}/edit": MEMBERS,
        "POST /orgs/{slug}/roles/{role_id}/edit": MEMBERS,
        "GET /orgs/{slug}/roles/{role_id}/delete": MEMBERS,
        "POST /orgs/{slug}/roles/{role_id}/delete": MEMBERS,
    }
)
ACCESS.update(
    {
        "POST /orgs/{slug}/agents/{agent_id}/status": MANAGE_RESOURCES,
        "POST /orgs/{slug}/workflows/{workflow_id}/enabled": MANAGE_RESOURCES,
        "POST /orgs/{slug}/connections/{connection_id}/secret": MANAGE_RESOURCES,
        "POST /orgs/{slug}/teams/{team_id}/members": MANAGE_RESOURCES,
        "POST /orgs/{slug}/teams/{team_id}/members/{membership_id}/remove": MANAGE_RESOURCES,
    }
)

# SPEC §11: the JSON API, the same permissions as the pages (walked by tests/api/ with tokens).
API_ACCESS = {
    "GET /api/v1/orgs/{slug}/agents": VIEW,
    "GET /api/v1/orgs/{slug}/agents/{agent_id}": VIEW,
    "POST /api/v1/orgs/{slug}/agents": MANAGE_RESOURCES,
    "PATCH /api/v1/orgs/{slug}/agents/{agent_id}": MANAGE_RESOURCES,
    "DELETE /api/v1/orgs/{slug}/agents/{agent_id}": MANAGE_RESOURCES,
    "GET /api/v1/orgs/{slug}/agent": AGENT,
    "GET /api/v1/orgs/{slug}/agent/workflows": AGENT,
    "GET /api/v1/orgs/{slug}/agent/connections": AGENT,
    "POST /api/v1/orgs/{slug}/agent/events": AGENT,
    # -- workflows, connections, teams (portal/api/resource.py) --
    "GET /api/v1/orgs/{slug}/workflows": VIEW,
    "GET /api/v1/orgs/{slug}/workflows/{workflow_id}": VIEW,
    "POST /api/v1/orgs/{slug}/workflows": MANAGE_RESOURCES,
    "PATCH /api/v1/orgs/{slug}/workflows/{workflow_id}": MANAGE_RESOURCES,
    "DELETE /api/v1/orgs/{slug}/workflows/{workflow_id}": MANAGE_RESOURCES,
    "GET /api/v1/orgs/{slug}/connections": VIEW,
    "GET /api/v1/orgs/{slug}/connections/{connection_id}": VIEW,
    "POST /api/v1/orgs/{slug}/connections": MANAGE_RESOURCES,
    "PATCH /api/v1/orgs/{slug}/connections/{connection_id}": MANAGE_RESOURCES,
    "DELETE /api/v1/orgs/{slug}/connections/{connection_id}": MANAGE_RESOURCES,
    "GET /api/v1/orgs/{slug}/teams": VIEW,
    "GET /api/v1/orgs/{slug}/teams/{team_id}": VIEW,
    "POST /api/v1/orgs/{slug}/teams": MANAGE_RESOURCES,
    "PATCH /api/v1/orgs/{slug}/teams/{team_id}": MANAGE_RESOURCES,
    "DELETE /api/v1/orgs/{slug}/teams/{team_id}": MANAGE_RESOURCES,
    "PUT /api/v1/orgs/{slug}/connections/{connection_id}/secret": MANAGE_RESOURCES,
    "DELETE /api/v1/orgs/{slug}/connections/{connection_id}/secret": MANAGE_RESOURCES,
    "GET /api/v1/orgs/{slug}/teams/{team_id}/members": VIEW,
    "POST /api/v1/orgs/{slug}/teams/{team_id}/members": MANAGE_RESOURCES,
    "DELETE /api/v1/orgs/{slug}/teams/{team_id}/members/{membership_id}": MANAGE_RESOURCES,
    # -- members, invites (portal/api/people.py) --
    "GET /api/v1/orgs/{slug}/members": VIEW,
    "GET /api/v1/orgs/{slug}/members/{member_id}": VIEW,
    "PATCH /api/v1/orgs/{slug}/members/{member_id}": MEMBERS,
    "DELETE /api/v1/orgs/{slug}/members/{member_id}": MEMBERS,
    "GET /api/v1/orgs/{slug}/invites": MEMBERS,
    "POST /api/v1/orgs/{slug}/invites": MEMBERS,
    "POST /api/v1/orgs/{slug}/invites/{invite_id}/resend": MEMBERS,
    "DELETE /api/v1/orgs/{slug}/invites/{invite_id}": MEMBERS,
    # -- audit events, exports, billing (portal/api/orgdata.py) --
    "GET /api/v1/orgs/{slug}/audit-events": AUDIT,
    "POST /api/v1/orgs/{slug}/exports": EXPORT,
    "GET /api/v1/orgs/{slug}/exports": EXPORT,
    "GET /api/v1/orgs/{slug}/exports/{export_id}": EXPORT,
    "GET /api/v1/orgs/{slug}/exports/{export_id}/download": EXPORT,
    "GET /api/v1/orgs/{slug}/billing": BILLING,
    "PATCH /api/v1/orgs/{slug}/billing": BILLING,
}
ACCESS.update(API_ACCESS)

# SPEC §12: the org's SCIM service, one handler for every SCIM path (walked by tests/scim/).
SCIM_ACCESS = {f"{method} /scim/v2/orgs/{{slug}}/{{path}}": SCIM for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}
ACCESS.update(SCIM_ACCESS)
