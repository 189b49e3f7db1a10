"""Fixtures of the membership tests: the crew (an org with one person of every role, no other
objects). The gate that holds a members service call at a named checkpoint is in the root
conftest (the custom roles' races use it too)."""

from __future__ import annotations

import pytest

from tests.factories import World


@pytest.fixture
async def crew(make_world) -> World:
    return await make_world(objects=False)
