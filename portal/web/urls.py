"""URLs from route names: the one way pages and handlers link to each other.

Every handler has a ``name=`` (``"<domain>.<action>"``, e.g. ``"agents.detail"``). Templates call
``url_for("agents.detail", agent_id=a.id)``; Python calls ``url_for(request, "agents.detail", …)``.
Inside an org the ``slug`` is filled in from the org context, so no caller spells ``/orgs/…``.

Litestar's ``route_reverse`` does the same job but sorts the candidate routes on every call; a
members page draws a few links per row, so the path formats are read once per app instead.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from litestar import Litestar, Request


class UnknownRoute(LookupError):
    """A programming error: a link to a route name that does not exist, or a missing parameter."""


def _formats(app: Litestar) -> dict[str, tuple[str, frozenset[str]]]:
    cached = app.state.get("_url_formats")
    if cached is None:
        cached = {}
        for route in app.routes:
            for handler in getattr(route, "route_handlers", ()):
                if handler.name:
                    params = frozenset(route.path_parameters)
                    # Litestar's path format keeps ``{name}``; a route served at several paths keeps the first.
                    cached.setdefault(handler.name, (route.path_format, params))
        app.state["_url_formats"] = cached
    return cached


_SAFE = re.compile(r"[A-Za-z0-9._~-]*")


def _quote(value: Any) -> str:
    text = str(value)  # slugs and UUIDs are already safe: quoting them is the slow path
    if text in (".", ".."):
        return text.replace(".", "%2E")  # never a dot segment that moves up the path
    return text if _SAFE.fullmatch(text) else quote(text, safe="")


def reverse(app: Litestar, name: str, slug: str | None, params: dict[str, Any]) -> str:
    try:
        path, needed = _formats(app)[name]
    except KeyError:
        raise UnknownRoute(f"no route is named {name!r}") from None
    if "slug" in needed and "slug" not in params:
        if slug is None:
            raise UnknownRoute(f"{name!r} is an org route: give slug= or call it inside an org")
        params = {**params, "slug": slug}
    missing = needed - params.keys()
    if missing:
        raise UnknownRoute(f"{name!r} needs {', '.join(sorted(missing))}")
    return path.format_map({key: _quote(params[key]) for key in needed})


def _org_slug(request: Request) -> str | None:
    org = request.scope.get("state", {}).get("org")
    return org.org.slug if org is not None else None


def url_for(request: Request, name: str, /, **params: Any) -> str:
    """The path of the route ``name``; inside an org, its ``slug`` defaults to the current org's."""
    return reverse(request.app, name, _org_slug(request), params)
