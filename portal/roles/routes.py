"""The roles pages: ``/orgs/{slug}/roles``, built from the resource declaration."""

from __future__ import annotations

from portal.resources.web import routes
from portal.roles.service import ROLES

ORG_ROUTES = routes(ROLES)
