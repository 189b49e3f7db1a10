"""Every org route declares exactly the permission `tests/access_matrix.py` requires (SPEC §2).

The behavioural sweeps can't see a route that declares a weaker permission than the table when
its service checks the role again (role change declaring ``org.view``, say): every request still
gets the right answer. The org middleware enforces the declaration alone, so the declaration
itself is checked here, route by route, against the table."""

from __future__ import annotations

from portal.tenancy.context import required_permission
from portal.tenancy.permissions import Perm, allowed
from tests.access_matrix import (
    ACCESS,
    AGENT,
    SCIM,
    AUDIT,
    BILLING,
    EXPORT,
    LEAVE,
    MANAGE_RESOURCES,
    MEMBERS,
    ORG,
    ROLES,
    SPEC_HOLDERS,
    VIEW,
)
from tests.routes import ORG_PREFIX, route_handlers

# SPEC §2's rows by the names the code gives them.
SPEC_PERMISSION = {
    VIEW: Perm.VIEW,
    MANAGE_RESOURCES: Perm.MANAGE_RESOURCES,
    BILLING: Perm.BILLING,
    AUDIT: Perm.AUDIT,
    EXPORT: Perm.EXPORT,
    MEMBERS: Perm.MANAGE_MEMBERS,
    ORG: Perm.MANAGE_ORG,
    LEAVE: Perm.LEAVE,
    AGENT: Perm.AGENT,
    SCIM: Perm.SCIM,
}


def test_each_spec_permission_is_held_by_the_roles_the_spec_names():
    """The table above pairs a SPEC row with the code's permission; the code's role matrix gives
    that permission to exactly the roles SPEC §2 lists."""
    assert set(SPEC_PERMISSION) == set(SPEC_HOLDERS)
    wrong = []
    for name, perm in SPEC_PERMISSION.items():
        holders = {role for role in ROLES if allowed(role, perm)}
        if holders != SPEC_HOLDERS[name]:
            wrong.append((name, perm.value, sorted(holders), sorted(SPEC_HOLDERS[name])))
    assert wrong == [], wrong


def test_every_org_route_declares_the_permission_the_access_table_requires(app):
    wrong = []
    checked = 0
    for path, handler in route_handlers(app):
        if not (path == ORG_PREFIX or path.startswith(ORG_PREFIX + "/")):
            continue
        for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
            row = f"{method} {path}"
            if row not in ACCESS:
                wrong.append((row, "no row in tests/access_matrix.py"))
                continue
            required = SPEC_PERMISSION.get(ACCESS[row])
            try:
                declared = required_permission(handler)
            except RuntimeError:
                declared = None
            if declared != required:
                wrong.append((row, f"declares {declared and declared.value}, the table requires {required and required.value}"))
            checked += 1
    assert checked >= 60, checked  # the org routes were found at all
    assert wrong == [], "\n".join(f"{row}: {problem}" for row, problem in wrong)
