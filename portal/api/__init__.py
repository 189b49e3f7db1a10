"""The JSON API (SPEC §11): org API tokens, and ``/api/v1/orgs/{slug}/…`` for programs."""
