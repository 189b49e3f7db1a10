"""The feature modules of the portal, in one list.

Each routes module exports ``ROUTES`` (top-level handlers) and may export ``ORG_ROUTES``
(handlers mounted under ``/orgs/{slug}``, each declaring ``opt={"permission": Perm.X}``).
Each ``tables`` module registers its tables with ``portal.db.registry``.
"""

from __future__ import annotations

import importlib

ROUTE_MODULES = [
    "portal.accounts.routes",
    "portal.orgs.routes",
    "portal.invites.routes",
    "portal.accounts.reset_routes",
    "portal.members.routes",
    "portal.resources.agents.routes",
    "portal.resources.workflows.routes",
    "portal.resources.connections.routes",
    "portal.resources.teams.routes",
    "portal.billing.routes",
    "portal.audit.routes",
    "portal.exports.routes",
    "portal.orgs.deletion_routes",
]

TABLE_MODULES: list[str] = [
    "portal.invites.tables",
    "portal.resources.tables",
    "portal.exports.tables",
]

for _name in TABLE_MODULES:
    importlib.import_module(_name)
