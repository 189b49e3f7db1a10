"""Fixtures of the membership tests: the crew (an org with one person of every role, no other
objects) and the gate that holds a members service call at a named checkpoint."""

from __future__ import annotations

import pytest

from tests.concurrency import CheckpointGate
from tests.factories import World


@pytest.fixture
async def crew(make_world) -> World:
    return await make_world(objects=False)


@pytest.fixture
def gate():
    from portal.members import service

    g = CheckpointGate()
    service.checkpoint_hook = g
    yield g
    service.checkpoint_hook = None
