"""The routes anyone may call without a session. Every other route requires one.

Entries are Litestar path templates, compared exactly (no patterns, so nothing matches by accident).
``tests/test_inventory.py`` fails on any route that is neither listed here nor behind a session.
"""

PUBLIC_ROUTES: frozenset[str] = frozenset(
    {
        "/",
        "/healthz",
        "/signup",
        "/login",
        "/static/{file_path}",
        "/invites/{token}",  # the invite landing (GET); accepting needs a session
        "/forgot-password",
        "/reset-password/{token}",
    }
)
