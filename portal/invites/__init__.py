"""Invites: emailed, role-scoped, single-use links into an organization (SPEC §3)."""
