"""`portal migrate`: Piccolo migrations as the owner role, then the app role's exact grants."""

from __future__ import annotations

import asyncio
import os

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
        if settings.migrate_database_url != settings.database_url:
            await privileges.apply(settings.migrate_database_url, settings.app_db_role)
        else:
            print("warning: MIGRATE_DATABASE_URL is not set; the app role owns its tables, so RLS is weaker")

    asyncio.run(run())
