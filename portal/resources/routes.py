"""Every resource's pages: the shared ones built from each declaration, and each one's own."""

from __future__ import annotations

from portal.resources.agents.service import AGENTS
from portal.resources.connections import routes as connection_routes
from portal.resources.connections.service import CONNECTIONS
from portal.resources.teams import routes as team_routes
from portal.resources.teams.service import TEAMS
from portal.resources.web import routes
from portal.resources.workflows.service import WORKFLOWS

RESOURCES = (AGENTS, WORKFLOWS, CONNECTIONS, TEAMS)

ORG_ROUTES = [
    *(handler for resource in RESOURCES for handler in routes(resource)),
    *connection_routes.ROUTES,
    *team_routes.ROUTES,
]
