"""SCIM 2.0 provisioning (SPEC §12, RFC 7643/7644): being built (issue 17)."""
