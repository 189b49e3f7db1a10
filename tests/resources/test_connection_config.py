"""SECURITY.md 38: a connection's config accepts only the keys its kind declares, with their types;
credentials go only to the encrypted secret. Refused on create and on edit with a message that
names the key and the keys the kind accepts, and nothing is written."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from portal.db import engine as db
from portal.resources.connections import kinds
from portal.resources.connections.service import KINDS, config_problem
from portal.tenancy import scope as tenancy
from tests.factories import events, text_of, unique

# The keys each kind accepts, written out here rather than read from the code under test.
ACCEPTED = {
    "openai": ["base_url", "organization", "project"],
    "anthropic": ["base_url", "api_version"],
    "azure_openai": ["endpoint", "deployment", "api_version"],
    "slack": ["workspace", "default_channel", "unfurl_links"],
    "github": ["owner", "repositories", "api_url"],
    "jira": ["site", "project", "user_email"],
    "postgres": ["host", "database", "port", "user", "sslmode"],
    "s3": ["bucket", "region", "prefix", "access_key_id", "endpoint_url"],
    "webhook": ["url", "method", "timeout_seconds"],
}
# The review's finding: each was stored in the readable config before.
CREDENTIALS = [
    ("postgres", "db_password"),
    ("s3", "aws_secret_access_key"),
    ("webhook", "x-api-key"),
    ("github", "github_token"),
]


@pytest.fixture
async def setup(make_org, client_for):
    org = await make_org()
    return org, await client_for(org.owner), f"/orgs/{org.slug}/connections"


def page_text(r) -> str:
    return text_of(r).replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')


async def rows(su, org_id) -> list[dict]:
    return [dict(r) for r in await su.fetch("SELECT * FROM connection WHERE org_id = $1 ORDER BY id", org_id)]


async def create(c, base: str, kind: str, config: dict) -> str:
    r = await c.post(base, {"name": unique(kind), "kind": kind, "config": json.dumps(config)})
    assert r.status_code == 303, page_text(r)
    return r.headers["location"]


def test_every_kind_declares_its_keys():
    assert {k: v.key_names for k, v in KINDS.items()} == ACCEPTED
    for kind in KINDS.values():
        assert kind.config.__struct_config__.forbid_unknown_fields, kind.label


def test_no_accepted_key_looks_like_a_credential():
    """The allow-list must never readmit what the credential hint warns about."""
    for key, kind in KINDS.items():
        assert not [k for k in kind.key_names if kinds.looks_like_credential(k)], key
    for _, key in CREDENTIALS:
        assert kinds.looks_like_credential(key), key


@pytest.mark.parametrize("kind,key", CREDENTIALS)
async def test_credential_keys_are_refused_on_create_and_nothing_is_written(setup, su, snapshot, kind, key):
    org, c, base = setup
    before, events_before = await snapshot(org.id), await events(su, org.id)
    config = {**KINDS[kind].example, key: "hunter2-not-here"}
    r = await c.post(base, {"name": "Leaky", "kind": kind, "config": json.dumps(config), "secret": "the-real-secret"})
    assert r.status_code == 422
    assert 'id="e-config"' in r.text and 'aria-invalid="true"' in r.text
    text = page_text(r)
    assert f"“{key}” looks like a credential" in text
    assert "Credentials go only in the secret field, which is stored encrypted" in text
    assert f"don't accept “{key}” in their configuration. They accept only: {', '.join(ACCEPTED[kind])}." in text
    assert "the-real-secret" not in r.text
    assert await snapshot(org.id) == before and await events(su, org.id) == events_before
    assert await rows(su, org.id) == []


@pytest.mark.parametrize("kind,key", CREDENTIALS)
async def test_credential_keys_are_refused_on_edit_and_nothing_is_written(setup, su, snapshot, kind, key):
    org, c, base = setup
    url = await create(c, base, kind, KINDS[kind].example)
    before_rows, before, events_before = await rows(su, org.id), await snapshot(org.id), await events(su, org.id)
    config = {**KINDS[kind].example, key: "hunter2-not-here"}
    r = await c.post(f"{url}/edit", {"name": "Renamed too", "config": json.dumps(config)})
    assert r.status_code == 422
    assert 'id="e-config"' in r.text
    text = page_text(r)
    assert f"“{key}” looks like a credential" in text
    assert f"They accept only: {', '.join(ACCEPTED[kind])}." in text
    assert f"{KINDS[kind].label}: configuration keys" in text  # the form still shows what is accepted
    assert await rows(su, org.id) == before_rows
    assert await snapshot(org.id) == before and await events(su, org.id) == events_before


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_each_kinds_example_is_accepted_on_create_and_edit(setup, su, kind):
    org, c, base = setup
    example = KINDS[kind].example
    url = await create(c, base, kind, example)
    assert json.loads(await su.fetchval("SELECT config FROM connection WHERE org_id = $1", org.id)) == example
    r = await c.post(f"{url}/edit", {"name": "Renamed", "config": json.dumps(example)})
    assert r.status_code == 303
    detail = await c.get(url)
    assert detail.status_code == 200 and "no longer accepted" not in detail.text


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_an_unknown_key_is_named_with_the_keys_the_kind_accepts(setup, su, kind):
    org, c, base = setup
    r = await c.post(base, {"name": "X", "kind": kind, "config": json.dumps({**KINDS[kind].example, "colour": "blue"})})
    assert r.status_code == 422
    text = page_text(r)
    assert (
        f"{KINDS[kind].label} connections don't accept “colour” in their configuration. "
        f"They accept only: {', '.join(ACCEPTED[kind])}."
    ) in text
    assert "looks like a credential" not in text
    assert await rows(su, org.id) == []


async def test_several_unknown_keys_are_all_named(setup):
    org, c, base = setup
    config = {"host": "h", "database": "d", "password": "x", "colour": "blue", "x-api-key": "y"}
    r = await c.post(base, {"name": "X", "kind": "postgres", "config": json.dumps(config)})
    text = page_text(r)
    assert r.status_code == 422
    assert "“password”, “x-api-key” look like credentials." in text
    assert "don't accept “password”, “colour”, “x-api-key” in their configuration." in text


@pytest.mark.parametrize(
    "kind,config,message",
    [
        ("postgres", {"host": "db", "database": "a", "port": "5432"}, "“port” must be a whole number from 1 to 65,535."),
        ("postgres", {"host": "db", "database": "a", "port": 5432.5}, "“port” must be a whole number from 1 to 65,535."),
        ("postgres", {"host": "db", "database": "a", "port": 70000}, "“port” must be a whole number from 1 to 65,535."),
        ("postgres", {"host": "db", "database": "a", "sslmode": "sometimes"}, "“sslmode” must be one of "),
        ("postgres", {"host": "db"}, "Add “database” (text): every PostgreSQL connection needs it."),
        ("postgres", {"host": None, "database": "a"}, "“host” must be text."),
        ("postgres", {"host": "", "database": "a"}, "“host” can't be empty."),
        ("postgres", {"host": "h" * 201, "database": "a"}, "“host” can have at most 200 characters."),
        ("slack", {"unfurl_links": "yes"}, "“unfurl_links” must be true or false."),
        ("slack", {"workspace": 42}, "“workspace” must be text."),
        ("github", {"repositories": "platform"}, "“repositories” must be a list of text."),
        ("github", {"repositories": ["platform", 7]}, "“repositories[1]” must be text in quotes."),
        ("webhook", {"url": "ftp://files.example.com"}, "“url” must be an http or https URL with a host"),
        ("webhook", {"url": "https://hooks.example.com", "method": "GET"}, "“method” must be one of PATCH, POST, PUT."),
        ("webhook", {"url": "https://bot:hunter2@hooks.example.com"}, "“url” can't contain a user name or password"),
        ("webhook", {"url": "https://hooks.example.com/in?api_key=abc"}, "“url” carries “api_key” in its query"),
        ("jira", {"site": "https://acme.atlassian.net", "user_email": "not an email"}, "“user_email” must be an email address"),
        ("azure_openai", {}, "Add “endpoint” (URL): every Azure OpenAI connection needs it."),
    ],
)
async def test_wrong_types_are_refused_with_a_clear_message(setup, su, kind, config, message):
    org, c, base = setup
    r = await c.post(base, {"name": "X", "kind": kind, "config": json.dumps(config)})
    assert r.status_code == 422 and 'id="e-config"' in r.text
    assert message in page_text(r)
    assert await rows(su, org.id) == []


async def test_wrong_types_are_refused_on_edit_too(setup, su):
    org, c, base = setup
    url = await create(c, base, "postgres", KINDS["postgres"].example)
    before = await rows(su, org.id)
    r = await c.post(f"{url}/edit", {"name": "X", "config": json.dumps({"host": "db", "database": "a", "port": "5432"})})
    assert r.status_code == 422 and "“port” must be a whole number from 1 to 65,535." in page_text(r)
    assert await rows(su, org.id) == before


async def test_the_form_shows_the_keys_of_the_chosen_kind(setup):
    org, c, base = setup
    r = await c.get(f"{base}/new")
    assert r.status_code == 200 and "Choose a kind to see the configuration keys it accepts." in page_text(r)
    assert "Configuration keys of every kind" in r.text  # the no-JS reference, every kind in it
    assert all(f"{k.label}: configuration keys" in page_text(r) for k in KINDS.values())
    # ?kind= preselects a kind and shows its keys, types, what is required and its example
    r = await c.get(f"{base}/new", params={"kind": "postgres"})
    chosen = r.text.split('id="config-keys"', 1)[1].split("</details>", 1)[0].split("<details", 1)[0]
    assert '<option value="postgres" selected>' in r.text
    for key in ACCEPTED["postgres"]:
        assert f"<code>{key}</code>" in chosen
    assert "whole number from 1 to 65,535" in chosen and "Required" in chosen and "&#34;sslmode&#34;: &#34;require&#34;" in chosen
    assert "slack" not in chosen.lower()
    # a kind that doesn't exist is simply not chosen
    r = await c.get(f"{base}/new", params={"kind": "<script>"})
    assert r.status_code == 200 and "Choose a kind to see" in r.text and "<script>" not in r.text.split("<main", 1)[1]


async def test_changing_the_kind_with_htmx_swaps_in_its_keys(setup):
    org, c, base = setup
    r = await c.get(f"{base}/new", params={"kind": "webhook"}, headers={"HX-Request": "true", "HX-Target": "config-keys"})
    assert r.status_code == 200 and "<html" not in r.text and "<form" not in r.text
    assert "HTTP webhook: configuration keys" in r.text and "<code>timeout_seconds</code>" in r.text
    assert r.headers["vary"] == "HX-Request"
    # without HX-Target it is the whole page (e.g. a boosted link)
    r = await c.get(f"{base}/new", params={"kind": "webhook"}, headers={"HX-Request": "true"})
    assert "<html" in r.text


async def test_the_form_after_a_refusal_and_the_edit_form_show_the_kinds_keys(setup):
    org, c, base = setup
    r = await c.post(base, {"name": "X", "kind": "jira", "config": '{"token": "t"}'})
    assert r.status_code == 422
    assert "Jira: configuration keys" in r.text.split('id="config-keys"', 1)[1].split("<details", 1)[0]
    url = await create(c, base, "s3", KINDS["s3"].example)
    r = await c.get(f"{url}/edit")
    assert "Amazon S3: configuration keys" in r.text and "<code>endpoint_url</code>" in r.text
    assert "Configuration keys of every kind" not in r.text  # the kind is fixed: only its own keys


async def test_a_stored_config_that_is_no_longer_accepted_is_flagged(setup, su, make_member, client_for):
    """Rows saved before the allow-list: every reader sees the warning; the edit form refuses
    them until fixed."""
    org, c, base = setup
    connection_id = await su.fetchval(
        """INSERT INTO connection (org_id, name, kind, config) VALUES ($1, 'Old', 'postgres', $2::jsonb) RETURNING id""",
        org.id, json.dumps({"host": "db", "database": "a", "db_password": "hunter2"}),
    )
    viewer = await client_for(await make_member(org, "compliance_officer"))
    r = await viewer.get(f"{base}/{connection_id}")
    assert r.status_code == 200
    assert "This configuration is no longer accepted. “db_password” looks like a credential." in page_text(r)
    assert "Edit the connection" not in r.text  # not for someone who can't edit
    assert "hunter2" not in r.text and "(hidden: looks like a credential)" in r.text
    r = await c.get(f"{base}/{connection_id}")
    assert "Edit the connection" in r.text
    r = await c.post(f"{base}/{connection_id}/edit", {"name": "Old", "config": json.dumps({"host": "db", "database": "a"})})
    assert r.status_code == 303
    assert "no longer accepted" not in (await c.get(f"{base}/{connection_id}")).text


async def test_a_credential_in_an_old_config_reaches_no_reader(setup, su, make_member, client_for):
    """Not the edit form (every member may edit), not the audit events of the fix, not the audit
    page, CSV or export — nor an event recorded before the allow-list existed."""
    org, c, base = setup
    old = {"host": "db", "database": "a", "db_password": "hunter2"}
    connection_id = await su.fetchval(
        "INSERT INTO connection (org_id, name, kind, config) VALUES ($1, 'Old', 'postgres', $2::jsonb) RETURNING id",
        org.id, json.dumps(old),
    )
    await su.execute(  # as the create event was recorded before this change
        """INSERT INTO audit_event (org_id, actor_email, action, target_type, target_id, target_label, after)
           VALUES ($1, 'x@example.test', 'connection.created', 'connection', $2, 'Old', $3::jsonb)""",
        org.id, str(connection_id), json.dumps({"name": "Old", "kind": "postgres", "config": old}),
    )
    member = await client_for(await make_member(org, "member"))
    edit = await member.get(f"{base}/{connection_id}/edit")
    assert edit.status_code == 200 and "hunter2" not in edit.text
    fixed = {"host": "db", "database": "a"}
    assert (await member.post(f"{base}/{connection_id}/edit", {"name": "Old", "config": json.dumps(fixed)})).status_code == 303
    stored = await su.fetchval(
        "SELECT string_agg(coalesce(before::text, '') || coalesce(after::text, ''), ' ') FROM audit_event WHERE org_id = $1 AND action = 'connection.updated'",
        org.id,
    )
    assert "hunter2" not in stored
    officer = await client_for(await make_member(org, "compliance_officer"))
    for path in (f"/orgs/{org.slug}/audit", f"/orgs/{org.slug}/audit.csv"):
        r = await officer.get(path)
        assert r.status_code == 200 and "hunter2" not in r.text, path


async def test_the_demo_connections_are_valid(app, su, make_org):
    """`portal demo` inserts below the form: its configs must still be ones the form accepts."""
    from portal.resources.demo import demo_resources

    org = await make_org()
    async with db.transaction(user_id=org.owner.id):
        scope = await tenancy.enter(org.id)
        await demo_resources(scope, org.owner.id, org.owner.email)
    stored = await su.fetch("SELECT kind, config FROM connection WHERE org_id = $1", org.id)
    assert len(stored) >= 4
    assert [(r["kind"], config_problem(r["kind"], json.loads(r["config"]))) for r in stored] == [(r["kind"], None) for r in stored]


async def test_the_bench_connections_are_valid(su):
    from bench.export_memory import seed_org

    slug = unique("bench")
    await seed_org(su, slug, 300)
    stored = await su.fetch(
        "SELECT kind, config FROM connection WHERE org_id = (SELECT id FROM organization WHERE slug = $1)", slug
    )
    assert stored
    assert all(config_problem(r["kind"], json.loads(r["config"])) is None for r in stored)


# Any JSON object, for any kind or none: a message or None, never an exception (so never a 500).
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8,
)
_KEYS = st.one_of(st.sampled_from(sorted({k for keys in ACCEPTED.values() for k in keys})), st.text(max_size=12))


@settings(max_examples=400, deadline=None)
@given(kind=st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=8)), config=st.dictionaries(_KEYS, _JSON, max_size=5))
def test_any_config_gets_an_answer_and_only_declared_keys_pass(kind, config):
    problem = config_problem(kind, config)
    assert problem is None or isinstance(problem, str) and problem
    if kind in KINDS and problem is None:
        assert set(config) <= set(ACCEPTED[kind])
        assert not kinds.credential_problem(config)
