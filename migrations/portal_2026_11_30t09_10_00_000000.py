"""Verified email: ``app_user.email_verified_at``, set when the person confirms an emailed link.

Accounts that exist when this runs stay unverified (NULL). Before this migration anyone could sign
up with any address, so an existing account proves nothing about its mailbox — and accounts made
that way, to accept invites sent to someone else, are exactly what this change is for. Marking
them verified would keep that hole open for good. The cost is small: an unverified account still
signs in and works as before; only accepting an invite asks it to confirm its address once (the
landing page offers the mail). ``portal demo`` marks its own accounts verified.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.ddl import execute

ID = "2026-11-30T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "verified email"

SQL = """
ALTER TABLE app_user ADD COLUMN email_verified_at timestamptz;
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def run():
        await execute(SQL)

    manager.add_raw(run)
    return manager
