"""Core tables: accounts, sessions, organizations, memberships, billing settings, audit events.

The DDL lives in ``migrations/`` (hand-written SQL, including RLS and constraints Piccolo cannot
express); these classes describe the same tables for queries. ``tests/test_inventory.py`` checks
the two agree.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    BigInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db.registry import global_table, tenant_table


@global_table("Accounts exist before and across organizations; reached only via the user's own session or a membership.")
class User(Table, tablename="app_user"):
    id = UUID(primary_key=True)
    email = Varchar(length=320, unique=True)  # stored lower-cased
    name = Varchar(length=200)
    password_hash = Text()
    created_at = Timestamptz(default=TimestamptzNow())
    email_verified_at = Timestamptz(null=True, default=None)  # set by an emailed link (accounts.verify)
    scim_org_id = UUID(null=True, default=None)  # the org whose SCIM created it, until its person chose a password


@global_table("Server-side sessions belong to a user, not to an organization.")
class UserSession(Table, tablename="user_session"):
    id = UUID(primary_key=True)
    token_hash = Varchar(length=64, unique=True)
    user_id = ForeignKey(references=User, null=False, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)
    ip = Varchar(length=64, null=True, default=None)
    user_agent = Varchar(length=300, null=True, default=None)


@global_table("Sign-in throttling counts attempts per email and per client before any organization is known.")
class LoginAttempt(Table, tablename="login_attempt"):
    id = UUID(primary_key=True)
    email = Varchar(length=320)
    ip = Varchar(length=64)
    succeeded = Boolean(default=False)
    at = Timestamptz(default=TimestamptzNow())


@global_table("Per-client rate-limit hits for public endpoints (invite landing, password reset).")
class RateHit(Table, tablename="rate_hit"):
    id = UUID(primary_key=True)
    bucket = Varchar(length=200)
    at = Timestamptz(default=TimestamptzNow())


@global_table("The tenant itself: the org row is what tenant rows point at; it holds no other org's data.")
class Organization(Table, tablename="organization"):
    id = UUID(primary_key=True)
    slug = Varchar(length=40, unique=True)
    name = Varchar(length=100)
    created_at = Timestamptz(default=TimestamptzNow())
    # Kept exact by triggers on membership (migrations/…30t13…); nothing else may write it.
    member_count = Integer(default=0)


@global_table("Platform-level record that an org was deleted; written as the org's rows disappear.")
class DeletionReceipt(Table, tablename="deletion_receipt"):
    id = UUID(primary_key=True)
    deleted_org_id = UUID()  # no foreign key: the org is gone
    slug = Varchar(length=40)
    name = Varchar(length=100)
    deleted_by = UUID(null=True)
    deleted_by_email = Varchar(length=320)
    deleted_at = Timestamptz(default=TimestamptzNow())
    row_counts = JSONB()


@tenant_table
class Membership(Table, tablename="membership"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    user_id = ForeignKey(references=User, null=False, index=True)
    role = Varchar(length=32)  # a built-in role, or "custom"
    custom_role_id = UUID(null=True)  # with "custom": (org_id, custom_role_id) → org_role (org_id, id)
    created_at = Timestamptz(default=TimestamptzNow())
    suspended_at = Timestamptz(null=True, default=None)  # deactivated by the org's identity provider (SCIM)
    scim_managed = Boolean(default=False)  # provisioned by the org's SCIM service
    # What the org's identity provider says of the member (SCIM, portal.scim): per membership,
    # since each org of an account has its own IdP.
    scim_external_id = Varchar(length=200, null=True, default=None)
    scim_display_name = Varchar(length=200, null=True, default=None)
    scim_given_name = Varchar(length=200, null=True, default=None)
    scim_family_name = Varchar(length=200, null=True, default=None)
    scim_formatted_name = Varchar(length=400, null=True, default=None)
    scim_emails = JSONB(null=True, default=None)
    scim_active = Boolean(null=True, default=None)
    scim_version = Integer(default=1)
    scim_updated_at = Timestamptz(null=True, default=None)


@tenant_table
class BillingSettings(Table, tablename="billing_settings"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, unique=True)
    plan = Varchar(length=20, default="free")
    billing_email = Varchar(length=320, null=True, default=None)
    seat_limit = Integer(default=25)
    spend_cap_cents = BigInt(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


@tenant_table
class AuditEvent(Table, tablename="audit_event"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False)
    actor_id = UUID(null=True)
    actor_email = Varchar(length=320, null=True)
    action = Varchar(length=64)
    target_type = Varchar(length=40, null=True)
    target_id = Varchar(length=64, null=True)
    target_label = Varchar(length=320, null=True)
    before = JSONB(null=True)
    after = JSONB(null=True)
    ip = Varchar(length=64, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    actor_token_id = UUID(null=True)  # an API call's token (``actor_id`` is then who created it)
    actor_label = Varchar(length=200, null=True)  # how the log names that actor, e.g. API token “Deploy”
