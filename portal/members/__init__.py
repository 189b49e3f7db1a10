"""Membership lifecycle: the members list, role changes, removal, leaving, ownership transfer."""
