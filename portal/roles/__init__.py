"""Custom roles (SPEC §13): an org's own sets of permissions, layered on the built-in roles."""
