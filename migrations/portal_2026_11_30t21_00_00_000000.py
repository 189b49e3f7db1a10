"""SCIM tokens and the attributes an identity provider keeps per membership (SPEC §12).

* A SCIM token is an ``api_token`` row with ``role = 'scim'``: hashed, shown once, revocable,
  "last used", entered by the same ``enter_token``; it carries ``scim.provision`` alone.
* ``app_user.scim_org_id``: the org whose SCIM created the account (its userName may change only
  there, and only until its person chose a password).
* ``membership.scim_*``: what the org's IdP says of the member (externalId, displayName, name
  parts, emails, active), kept per membership because an account may belong to several orgs,
  each with its own IdP. ``scim_version`` grows with every SCIM-visible change (``meta.version``).
"""

from portal.db.ddl import raw_migration

ID = "2026-11-30T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "scim tokens and membership attributes"

SQL = """
ALTER TABLE api_token DROP CONSTRAINT api_token_role_check;
ALTER TABLE api_token ADD CONSTRAINT api_token_role_check
    CHECK (role IN ('billing_admin', 'compliance_officer', 'member', 'custom', 'agent', 'scim'));

ALTER TABLE membership
    ADD COLUMN scim_external_id varchar(200),
    ADD COLUMN scim_display_name varchar(200),
    ADD COLUMN scim_given_name varchar(200),
    ADD COLUMN scim_family_name varchar(200),
    ADD COLUMN scim_formatted_name varchar(400),
    ADD COLUMN scim_emails jsonb,
    ADD COLUMN scim_active boolean,
    ADD COLUMN scim_version integer NOT NULL DEFAULT 1,
    ADD COLUMN scim_updated_at timestamptz;
ALTER TABLE team ADD COLUMN scim_external_id varchar(200);
-- The org whose SCIM created the account, while nobody has chosen its password: the only case in
-- which that org's IdP may change its sign-in email (userName).
ALTER TABLE app_user ADD COLUMN scim_org_id uuid REFERENCES organization(id) ON DELETE SET NULL;
CREATE UNIQUE INDEX membership_scim_external_id ON membership (org_id, scim_external_id) WHERE scim_external_id IS NOT NULL;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
