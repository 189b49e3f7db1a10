"""`portal migrate`: Piccolo migrations as the owner role, then the app role's exact grants."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
from typing import TextIO
from urllib.parse import urlsplit

from portal.config import Settings


def migrate(settings: Settings) -> None:
    os.environ["PICCOLO_CONF"] = "portal.db.piccolo_conf"
    os.environ.setdefault("MIGRATE_DATABASE_URL", settings.migrate_database_url)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from portal.db import privileges

    async def run() -> None:
        with contextlib.redirect_stdout(_TrueCounts(sys.stdout)):
            result = await run_forwards("portal")
        if not result.success:
            raise SystemExit(f"migration failed: {result.message}")
        await privileges.apply(settings.migrate_database_url, settings.app_db_role, settings.database_url)

    if not settings.migrate_database_url:
        raise SystemExit("portal migrate: set MIGRATE_DATABASE_URL to the owner role's URL (see README, Deploying).")
    if urlsplit(settings.migrate_database_url).username == settings.app_db_role:
        raise SystemExit(
            "portal migrate: MIGRATE_DATABASE_URL must connect as the owner role, not as the application's "
            "login role (DATABASE_URL): a role that owns the tables can switch row-level security off."
        )
    asyncio.run(run())


_ALREADY = re.compile(r"^\W*(\d+) migrations? already complete$")
_NOT_YET = re.compile(r"^\W*(\d+) migrations? not yet run$")


class _TrueCounts(io.TextIOBase):
    """Piccolo's progress lines, passed on as they come, except its first: Piccolo (1.x) prints the
    number of migrations there are as "already complete", so a fresh database read "9 already
    complete" and then "9 not yet run". That line is held back and, with the next one, becomes one
    true line: "0 of 9 migrations already complete, 9 to run"."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.partial = out, ""
        self.total: int | None = None  # the held-back count, until the next line
        self.corrected = False

    def write(self, text: str) -> int:
        self.partial += text
        while "\n" in self.partial:
            line, self.partial = self.partial.split("\n", 1)
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if not self.corrected and (already := _ALREADY.match(line)):
            self.total, self.corrected = int(already[1]), True
            return
        if self.total is not None:
            total, self.total = self.total, None
            if not_yet := _NOT_YET.match(line):
                pending = int(not_yet[1])
                line = f"👍 {total - pending} of {total} migrations already complete, {pending} to run"
            else:  # "No migrations need to be run"
                self.out.write(f"👍 {total} of {total} migrations already complete\n")
        self.out.write(line + "\n")
        self.out.flush()

    def flush(self) -> None:
        self.out.flush()
