"""The feature modules of the portal, in one list.

Each routes module exports ``ROUTES`` (top-level handlers) and may export ``ORG_ROUTES``
(handlers mounted under ``/orgs/{slug}``, each declaring ``opt={"permission": Perm.X}``).
Each tables module declares its tables with ``portal.db.registry``'s decorators.

Nothing is imported until asked for: ``route_modules()`` (the app) and ``table_modules()`` (the
table registry, ``portal.db.registry.load_all``) import their modules and return them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ROUTE_MODULES = [
    "portal.accounts.routes",
    "portal.orgs.routes",
    "portal.invites.routes",
    "portal.accounts.reset_routes",
    "portal.members.routes",
    "portal.resources.routes",
    "portal.roles.routes",
    "portal.api.routes",
    "portal.scim.pages",
    "portal.billing.routes",
    "portal.audit.routes",
    "portal.exports.routes",
    "portal.orgs.deletion_routes",
    "portal.ops.routes",
]

TABLE_MODULES = [
    "portal.db.tables",
    "portal.invites.tables",
    "portal.resources.tables",
    "portal.roles.tables",
    "portal.api.tables",
    "portal.exports.tables",
    "portal.mail.tables",
]


def route_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in ROUTE_MODULES]


def table_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in TABLE_MODULES]
