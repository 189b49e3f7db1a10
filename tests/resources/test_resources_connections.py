"""Connections: the secret is write-only — never in a response, a log line, the audit trail or the
database in plaintext — and the form refuses unknown kinds, bad config and oversized fields."""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid

import pytest

from portal.resources import crypto
from portal.resources.connections.service import KINDS
from tests.factories import events, text_of


@pytest.fixture
async def setup(make_org, client_for):
    org = await make_org()
    return org, await client_for(org.owner), f"/orgs/{org.slug}/connections"


def canary() -> str:
    return f"sk-canary-{secrets.token_hex(12)}"


async def database_text(su) -> str:
    """Every row of every table, as text."""
    tables = [r["tablename"] for r in await su.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    parts = []
    for table in tables:
        parts += [r["t"] for r in await su.fetch(f"SELECT t::text AS t FROM {table} t")]
    return "\n".join(parts)


async def test_the_secret_never_leaves_the_server(setup, su, make_member, client_for, caplog):
    caplog.set_level(logging.DEBUG)
    org, c, base = setup
    secret, second = canary(), canary()
    responses = []
    # a failed form never echoes it back
    responses.append(await c.post(base, {"name": "", "kind": "openai", "config": "{}", "secret": secret}))
    assert responses[-1].status_code == 422 and "enter it again" in text_of(responses[-1])
    responses.append(await c.post(base, {"name": "Production OpenAI", "kind": "openai", "config": "{}", "secret": secret}))
    assert responses[-1].status_code == 303
    url = responses[-1].headers["location"]
    connection_id = uuid.UUID(url.rsplit("/", 1)[1])
    for path in (url, f"{url}/edit", f"{url}/delete", base, f"{base}?q=openai", f"/orgs/{org.slug}",
                 f"/orgs/{org.slug}/audit", f"/orgs/{org.slug}/audit.csv", f"/orgs/{org.slug}/access-report",
                 f"/orgs/{org.slug}/access-report.csv"):
        responses.append(await c.get(path))
        assert responses[-1].status_code == 200, path
    detail = responses[2]
    assert "Set" in detail.text and "can't be displayed" in text_of(detail).replace("&#39;", "'")
    assert 'name="secret"' in detail.text and 'value="' + secret not in detail.text
    # replacing: htmx and plain, a failing attempt too
    responses.append(await c.post(f"{url}/secret", {"secret": second}, htmx=True))
    assert responses[-1].status_code == 200 and "Secret replaced" in responses[-1].text
    responses.append(await c.post(f"{url}/secret", {"secret": "x" * 5000}))
    assert responses[-1].status_code == 422
    responses.append(await c.post(f"{url}/edit", {"name": "", "config": "{}", "secret": secret}))
    assert responses[-1].status_code == 422
    # another role reads the pages too
    viewer = await client_for(await make_member(org, "member"))
    responses += [await viewer.get(url), await viewer.get(base)]
    for r in responses:
        body = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        assert secret not in body and second not in body, r.request.url
    assert secret not in caplog.text and second not in caplog.text
    # at rest: only ciphertext, bound to this org and this connection
    dump = await database_text(su)
    assert secret not in dump and second not in dump
    stored = await su.fetchval("SELECT secret_ciphertext FROM connection WHERE id = $1", connection_id)
    assert stored.startswith("v1.") and second not in stored
    assert crypto.decrypt(stored, org_id=org.id, connection_id=connection_id) == second
    with pytest.raises(crypto.SecretError):
        crypto.decrypt(stored, org_id=uuid.uuid4(), connection_id=connection_id)
    with pytest.raises(crypto.SecretError):
        crypto.decrypt(stored, org_id=org.id, connection_id=uuid.uuid4())
    actions = [e["action"] for e in await events(su, org.id)]
    assert actions == ["connection.created", "connection.secret_replaced"]


def test_ciphertexts_differ_each_time_and_depend_on_the_key(monkeypatch):
    from portal import config, sealing

    ids = {"org_id": uuid.uuid4(), "connection_id": uuid.uuid4()}
    a, b = crypto.encrypt("same", **ids), crypto.encrypt("same", **ids)
    assert a != b and crypto.decrypt(a, **ids) == crypto.decrypt(b, **ids) == "same"
    other = config.get_settings().__class__(**{**config.get_settings().__dict__, "secret_key": "another-secret-key-0123456789"})
    monkeypatch.setattr(sealing, "get_settings", lambda: other)
    with pytest.raises(crypto.SecretError):
        crypto.decrypt(a, **ids)
    with pytest.raises(crypto.SecretError):
        crypto.decrypt("v1.garbage!!", **ids)
    with pytest.raises(crypto.SecretError):
        crypto.decrypt("v0.anything", **ids)


async def test_replace_and_clear_the_secret_without_javascript(setup, su):
    org, c, base = setup
    r = await c.post(base, {"name": "Slack", "kind": "slack", "config": '{"workspace": "acme"}'})
    url = r.headers["location"]
    assert "Not set" in (await c.get(url)).text
    r = await c.post(f"{url}/secret", {"secret": "   "})
    assert r.status_code == 422 and "Enter the new secret." in r.text
    r = await c.post(f"{url}/secret", {"secret": "xoxb-123\n"})
    assert r.status_code == 303 and r.headers["location"] == url
    row = await su.fetchrow("SELECT * FROM connection WHERE org_id = $1", org.id)
    assert row["secret_set_at"] is not None
    assert crypto.decrypt(row["secret_ciphertext"], org_id=org.id, connection_id=row["id"]) == "xoxb-123"
    r = await c.post(f"{url}/secret", {"action": "clear"})
    assert r.status_code == 303
    row = await su.fetchrow("SELECT * FROM connection WHERE org_id = $1", org.id)
    assert row["secret_ciphertext"] is None and row["secret_set_at"] is None
    evs = await events(su, org.id)
    assert [e["action"] for e in evs] == ["connection.created", "connection.secret_replaced", "connection.secret_cleared"]
    assert all("xoxb" not in (e["before"] or "") + (e["after"] or "") for e in evs)


@pytest.mark.parametrize(
    "form,field,message",
    [
        ({"name": "X", "kind": "ftp"}, "kind", "Choose one of the listed kinds."),
        ({"name": "X", "kind": ""}, "kind", "Choose what this connection connects to."),
        ({"name": "X", "kind": "openai", "config": "{bad"}, "config", "This isn't valid JSON"),
        ({"name": "X", "kind": "openai", "config": "[]"}, "config", "It must be a JSON object"),
        ({"name": "X", "kind": "openai", "config": json.dumps({"k": "v" * 5000})}, "config", "at most 4,000 characters"),
        ({"name": "X", "kind": "openai", "config": '{"api_key": "sk-live"}'}, "config", "“api_key” looks like a credential"),
        ({"name": "X", "kind": "postgres", "config": '{"options": {"Password": "hunter2"}}'}, "config", "“options.Password” looks like a credential"),
        ({"name": "X", "kind": "", "config": '{"db_password": "hunter2"}'}, "config", "“db_password” looks like a credential"),
        ({"name": "X", "kind": "openai", "secret": "s" * 4097}, "secret", "at most 4,096 characters"),
        ({"name": "n" * 300, "kind": "openai"}, "name", "at most 100 characters"),
    ],
)
async def test_invalid_connection_forms_are_422_with_messages(setup, su, form, field, message):
    org, c, base = setup
    r = await c.post(base, form)
    assert r.status_code == 422
    assert f'id="e-{field}"' in r.text
    assert message in text_of(r).replace("&#39;", "'")
    assert await su.fetchval("SELECT count(*) FROM connection WHERE org_id = $1", org.id) == 0


async def test_the_kind_cannot_change_on_edit(setup, su):
    org, c, base = setup
    url = (await c.post(base, {"name": "Repo", "kind": "github", "config": "{}"})).headers["location"]
    r = await c.post(f"{url}/edit", {"name": "Repo", "kind": "slack", "config": '{"owner": "acme"}'})
    assert r.status_code == 303
    row = await su.fetchrow("SELECT kind, config FROM connection WHERE org_id = $1", org.id)
    assert row["kind"] == "github" and json.loads(row["config"]) == {"owner": "acme"}


async def test_the_fixed_list_of_kinds_is_the_database_constraint(su):
    definition = await su.fetchval(
        """SELECT pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = 'connection'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%kind%'"""
    )
    assert set(re.findall(r"'(\w+)'", definition)) == set(KINDS)


async def test_list_search_matches_names_and_kind_labels(setup):
    org, c, base = setup
    for form in ({"name": "Warehouse", "kind": "postgres", "config": '{"host": "db", "database": "dw"}'},
                 {"name": "Alerts", "kind": "slack", "config": "{}"}):
        assert (await c.post(base, form)).status_code == 303
    r = await c.get(f"{base}?q=postgre")
    assert "Warehouse" in r.text and "Alerts" not in r.text
    r = await c.get(f"{base}?q=alerts")
    assert "Alerts" in r.text and "Warehouse" not in r.text
