"""A check of our own for schemathesis (loaded with ``SCHEMATHESIS_HOOKS``): no response to one
org's token may contain another org's canary string (SECURITY 42)."""

from __future__ import annotations

import os

import schemathesis


@schemathesis.check
def no_other_orgs_canary(ctx, response, case):
    canary = os.environ["PORTAL_CANARY"]
    if canary.encode() in response.content:  # bytes: an export's archive is no text
        raise AssertionError(f"another organization's data in the response: {canary}")
