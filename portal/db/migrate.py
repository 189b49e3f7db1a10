"""`portal migrate`: Piccolo migrations as the owner role, then the app role's exact grants."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

from portal.config import Settings


def migrate(settings: Settings) -> None:
    os.environ["PICCOLO_CONF"] = "portal.db.piccolo_conf"
    os.environ.setdefault("MIGRATE_DATABASE_URL", settings.migrate_database_url)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from portal.db import privileges

    async def run() -> None:
        result = await run_forwards("portal")
        if not result.success:
            raise SystemExit(f"migration failed: {result.message}")
        await privileges.apply(settings.migrate_database_url, settings.app_db_role)

    if not settings.migrate_database_url:
        raise SystemExit("portal migrate: set MIGRATE_DATABASE_URL to the owner role's URL (see README, Deploying).")
    if urlsplit(settings.migrate_database_url).username == settings.app_db_role:
        raise SystemExit(
            "portal migrate: MIGRATE_DATABASE_URL must connect as the owner role, not as the application's "
            "login role (DATABASE_URL): a role that owns the tables can switch row-level security off."
        )
    asyncio.run(run())
