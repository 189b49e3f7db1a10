"""The routes anyone may call without a session. Every other route requires one; the JSON API's
org routes (``/api/v1/orgs/{slug}/…``) require a bearer token instead (``portal.api.auth``).

Keys are Litestar path templates and values the methods that are public there, both compared
exactly (no patterns, so nothing matches by accident; a handler added later at a listed path with
another method still needs a session). ``tests/test_inventory.py`` fails on any route that is
neither listed here nor behind a session.
"""

_READ = frozenset({"GET", "HEAD"})
_FORM = frozenset({"GET", "HEAD", "POST"})

PUBLIC_ROUTES: dict[str, frozenset[str]] = {
    "/": _READ,
    "/healthz": _READ,
    "/readyz": _READ,  # database reachable, migrations current
    "/metrics": _READ,  # its own bearer token (METRICS_TOKEN); 404 without one configured
    "/signup": _FORM,
    "/login": _FORM,
    "/static/{file_path}": _READ,
    "/invites/{token}": _READ,  # the invite landing; accepting it needs a session
    "/forgot-password": _FORM,
    "/reset-password/{token}": _FORM,
    "/verify-email/{token}": _READ,  # the confirmation link's page; confirming needs the account signed in
    # The JSON API's OpenAPI document (Litestar serves it at these three); its org routes need a
    # bearer token.
    "/docs/api": _READ,  # the JSON API's reference, drawn from the OpenAPI document
    "/api/v1": _READ,
    "/api/v1/openapi.json": _READ,
    "/api/v1/{path}": _READ,
}


def is_public(path_template: str | None, method: str) -> bool:
    return method in PUBLIC_ROUTES.get(path_template or "", ())
