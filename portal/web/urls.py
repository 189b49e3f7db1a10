"""URLs from route names: the one way pages and handlers link to each other.

Every handler has a ``name=`` (``"<domain>.<action>"``, e.g. ``"agents.detail"``). Templates call
``url_for("agents.detail", agent_id=a.id)``; Python calls ``url_for(request, "agents.detail", …)``.
Inside an org the ``slug`` is filled in from the org context, so no caller spells ``/orgs/…``.

Litestar's ``route_reverse`` does the same job but sorts the candidate routes on every call; a
members page draws a few links per row, so the path formats are read once per app instead.
"""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import quote

from litestar import Litestar, Request


class UnknownRoute(LookupError):
    """A programming error: a link to a route name that does not exist, or a missing parameter."""


class Urls:
    """One app's route paths by name, read once (``for_app``), and the paths drawn again and
    again with the same parameters (an org's sidebar, an item link with an id marker)."""

    CACHE_SIZE = 4096

    def __init__(self, app: Litestar) -> None:
        self.formats: dict[str, tuple[str, frozenset[str]]] = {}
        for route in app.routes:
            for handler in getattr(route, "route_handlers", ()):
                if handler.name:
                    # Litestar's path format keeps ``{name}``; a route served at several paths keeps the first.
                    self.formats.setdefault(handler.name, (route.path_format, frozenset(route.path_parameters)))
        self._cache: dict[tuple, Any] = {}

    @classmethod
    def for_app(cls, app: Litestar) -> Urls:
        urls = app.state.get("_urls")
        if urls is None:
            urls = app.state["_urls"] = cls(app)
        return urls

    def reverse(self, name: str, slug: str | None, params: dict[str, Any]) -> str:
        try:
            path, needed = self.formats[name]
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

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()``, kept under ``key`` (at most ``CACHE_SIZE`` entries per app)."""
        value = self._cache.get(key)
        if value is None:
            value = build()
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = value
        return value


_SAFE = re.compile(r"[A-Za-z0-9._~-]*")


def _quote(value: Any) -> str:
    text = str(value)  # slugs and UUIDs are already safe: quoting them is the slow path
    if text in (".", ".."):
        return text.replace(".", "%2E")  # never a dot segment that moves up the path
    return text if _SAFE.fullmatch(text) else quote(text, safe="")


def reverse(app: Litestar, name: str, slug: str | None, params: dict[str, Any]) -> str:
    return Urls.for_app(app).reverse(name, slug, params)


def _org_slug(request: Request) -> str | None:
    org = request.scope.get("state", {}).get("org")
    return org.org.slug if org is not None else None


def url_for(request: Request, name: str, /, **params: Any) -> str:
    """The path of the route ``name``; inside an org, its ``slug`` defaults to the current org's."""
    return reverse(request.app, name, _org_slug(request), params)
