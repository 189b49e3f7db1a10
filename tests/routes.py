"""The live route table, read from the app the tests run (no tests here): every handler, every
(method, path template), the handler of one of them, and a template filled with a world's values."""

from __future__ import annotations

import re
from typing import Any, Iterator

ORG_PREFIX = "/orgs/{slug}"


def route_handlers(app) -> Iterator[tuple[str, Any]]:
    """(path template, handler) for every handler of every route, Litestar's automatic ones included."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            yield route.path_format, handler


def live_routes(app) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, but HEAD and OPTIONS, sorted."""
    out = set()
    for path, handler in route_handlers(app):
        for method in handler.http_methods - {"HEAD", "OPTIONS"}:
            out.add((method, path))
    return sorted(out)


API_PREFIX = "/api/"
SCIM_PREFIX = "/scim/"


def page_routes(app) -> list[tuple[str, str]]:
    """``live_routes`` but the JSON API's and SCIM's (bearer tokens, not sessions: tests/api/ and
    tests/scim/ walk those)."""
    return [(m, p) for m, p in live_routes(app) if not p.startswith((API_PREFIX, SCIM_PREFIX))]


def api_routes(app) -> list[tuple[str, str]]:
    return [(m, p) for m, p in live_routes(app) if p.startswith(API_PREFIX)]


def api_walk(app) -> list[tuple[str, str]]:
    """``api_routes`` in an order that leaves every route something to act on: deletions last,
    the deepest first (a connection's secret before the connection)."""
    return sorted(api_routes(app), key=lambda mp: (mp[0] == "DELETE", -mp[1].count("/") if mp[0] == "DELETE" else 0))


def handler_for(app, method: str, path: str):
    for route_path, handler in route_handlers(app):
        if route_path == path and method in handler.http_methods:
            return handler
    raise KeyError((method, path))


def fill(path: str, params: dict) -> str:
    """``path`` with every ``{name}`` replaced by ``params[name]`` (e.g. ``World.params``)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), path)
