"""SCIM filters as SQL (``portal.scim.filters``), on a real PostgreSQL: parsed by scim2-models,
translated to a parameterised condition, and held to scim2-models' own reading of the filter
(``ScimFilter.match``) on random people and random filters."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import ValidationError
from scim2_models import Context, SCIMException, ScimFilter, SearchRequest

from portal.scim.filters import Col, JsonItems, where_clause
from portal.scim.models import OrgUser

COLUMNS = {
    ("id", None): Col("p.id::text"),
    ("user_name", None): Col("p.user_name"),
    ("external_id", None): Col("p.external_id"),
    ("display_name", None): Col("p.display_name"),
    ("active", None): Col("p.active"),
    ("emails", None): JsonItems("p.emails"),
    ("emails", "value"): JsonItems("p.emails"),
    ("emails", "type"): JsonItems("p.emails"),
}
PEOPLE = [
    {"id": "1", "userName": "Ann@Example.com", "externalId": "ext-1", "displayName": "Ann Lee", "active": True,
     "emails": [{"value": "ann@example.com", "type": "work"}]},
    {"id": "2", "userName": "bob@example.com", "displayName": "Bob", "active": False, "emails": [{"value": "bob@home.net", "type": "home"}]},
    {"id": "3", "userName": "carol@other.org", "externalId": "", "active": None},
    {"id": "4", "userName": "x%_y@example.com", "externalId": "EXT-4", "displayName": "Percent", "active": True,
     "emails": [{"value": "x%_y@example.com", "type": "work"}, {"value": "y@home.net", "type": "home"}]},
]


def parse(expr: str) -> ScimFilter:
    return SearchRequest[OrgUser].model_validate({"filter": expr}, scim_ctx=Context.SEARCH_REQUEST).filter


@pytest.fixture
async def people(su):
    await su.execute(
        """CREATE TEMP TABLE IF NOT EXISTS p (id int, user_name text, external_id text, display_name text, active boolean, emails jsonb);
           TRUNCATE p"""
    )
    await su.executemany(
        "INSERT INTO p VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        [(int(x["id"]), x["userName"], x.get("externalId"), x.get("displayName"), x.get("active"), json.dumps(x.get("emails")))
         for x in PEOPLE],
    )
    return su


async def matching(conn, expr: str) -> list[int]:
    sql, params = where_clause(parse(expr), COLUMNS)
    return [r["id"] for r in await conn.fetch(f"SELECT p.id FROM p WHERE {sql} ORDER BY p.id", *params)]


@pytest.mark.parametrize("expr, ids", [
    ('userName eq "ANN@example.COM"', [1]),  # case-insensitive, as the schema says
    ('userName sw "ann" or userName ew ".org"', [1, 3]),
    ('userName co "%_"', [4]),  # LIKE's wildcards are plain characters
    ('emails[type eq "work" and value co "ann"]', [1]),  # both conditions on one email
    ('emails[type eq "home" and value co "ann"]', []),
    ('emails.value co "home.net"', [2, 4]),
    ('externalId eq "EXT-4"', [4]), ('externalId eq "ext-4"', []),  # externalId is case-exact
    ("externalId pr", [1, 4]),
    ("active eq false", [2]),
    ('not (active eq true)', [2, 3]),
    ('displayName co "e" and (emails pr)', [1, 4]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"', [2]),
    ('USERNAME eq "bob@example.com"', [2]),  # attribute names are case-insensitive
])
async def test_filters_select_what_they_say(people, expr, ids):
    assert await matching(people, expr) == ids


@pytest.mark.parametrize("expr", ['userName eq', 'title eq "x"', 'active co "x"', 'name.givenName eq "Ann"', 'userName eq "x" and'])
def test_a_filter_it_cannot_apply_is_a_400_invalid_filter(expr):
    with pytest.raises((ValidationError, SCIMException)) as caught:
        where_clause(parse(expr), COLUMNS)
    if isinstance(caught.value, SCIMException):
        error = caught.value.to_error()
        assert error.status == 400 and error.scim_type == "invalidFilter"


def test_values_never_enter_the_sql():
    sql, params = where_clause(parse('userName eq "x\'); DROP TABLE p; --" or displayName co "%"'), COLUMNS)
    assert "DROP" not in sql and "%" not in sql and params == ["x'); DROP TABLE p; --", "%"]


_ATTRS = st.sampled_from(["userName", "displayName", "externalId", "emails.value", "emails.type"])
_WORDS = st.sampled_from(["ann", "ANN", "example", ".com", "%_", "home", "work", "ext-1", "EXT-4", "x", ""])
_COMPARISON = st.builds(lambda a, op, v: f"{a} {op} {ScimFilter.quote(v)}", _ATTRS, st.sampled_from(["eq", "ne", "co", "sw", "ew"]), _WORDS)
_LEAF = st.one_of(_COMPARISON, _ATTRS.map(lambda a: f"{a} pr"), st.sampled_from(["active eq true", "active eq false"]))
_FILTER = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.builds(lambda a, b, op: f"({a} {op} {b})", inner, inner, st.sampled_from(["and", "or"])),
        inner.map(lambda a: f"not ({a})"),
    ),
    max_leaves=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expr=_FILTER)
async def test_sql_agrees_with_scim2_models_own_reading(people, expr):
    """The SQL selects exactly the people scim2-models' ``ScimFilter.match`` accepts."""
    f = parse(expr)
    expected = [int(x["id"]) for x in PEOPLE if f.match(OrgUser.model_validate(x))]
    assert await matching(people, expr) == expected, expr
