"""Verified email: ``app_user.email_verified_at``, set when the person confirms an emailed link.

Accounts that exist when this runs stay unverified (NULL). Before this migration anyone could sign
up with any address, so an existing account proves nothing about its mailbox — and accounts made
that way, to accept invites sent to someone else, are exactly what this change is for. Marking
them verified would keep that hole open for good. The cost is small: an unverified account still
signs in and works as before; only accepting an invite asks it to confirm its address once (the
landing page offers the mail). ``portal demo`` marks its own accounts verified.
"""

from portal.db.ddl import raw_migration

ID = "2026-11-30T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "verified email"

SQL = """
ALTER TABLE app_user ADD COLUMN email_verified_at timestamptz;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
