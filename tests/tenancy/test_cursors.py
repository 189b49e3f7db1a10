"""Cursors come from links, so anyone can write one: whatever a cursor holds, a list answers
with a page (from the beginning when the cursor is not one of ours), never a 500."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from uuid import UUID

import pytest
from hypothesis import given, strategies as st

from portal.params import decode_cursor, encode_cursor

CRAFTED = [
    ["2024-01-01T00:00:00+00:00", 1],
    ["2024-01-01T00:00:00+00:00", [1]],
    ["2024-01-01T00:00:00+00:00", None],
    [1, str(uuid.uuid4())],
    ["0001-01-01T00:00:00+01:00", str(uuid.uuid4())],
    ["9999-12-31T23:59:59-01:00", str(uuid.uuid4())],
    ["2024-01-01T00:00:00", str(uuid.uuid4())],
    ["2024-01-01T00:00:00+00:00\u0000", str(uuid.uuid4())],
    ["\ud800", str(uuid.uuid4())],
    {"a": 1},
    "text",
    [],
]


def raw(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("value", CRAFTED, ids=range(len(CRAFTED)))
async def test_a_crafted_cursor_is_a_page_not_an_error(world, client_for, value):
    owner = await client_for(world.users["owner"])
    cursor = raw(value)
    for path in (f"/orgs/{world.org.slug}/members?after={cursor}", f"/orgs/{world.org.slug}/members?before={cursor}",
                 f"/orgs/{world.org.slug}/audit?after={cursor}", f"/orgs/{world.org.slug}/audit?before={cursor}"):
        r = await owner.get(path)
        assert r.status_code == 200, (path, r.status_code)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=6))
def test_decoding_never_raises(value):
    for kinds in ((datetime, UUID), (str, UUID)):
        decoded = decode_cursor(raw(value), *kinds)
        assert decoded is None or (len(decoded) == 2 and isinstance(decoded[1], UUID))


def test_a_cursor_we_wrote_reads_back():
    at, key = datetime.fromisoformat("2026-11-30T12:00:00.123456+00:00"), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, key), datetime, UUID) == (at, key)
    assert decode_cursor(encode_cursor("agent 7", key), str, UUID) == ("agent 7", key)
