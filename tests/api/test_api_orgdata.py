"""``/api/v1/orgs/{slug}/audit-events``, ``…/exports`` and ``…/billing`` (SPEC §11,
``portal.api.orgdata``): the audit page's filters and a cursor that walks every event exactly
once; an export requested, built, checked and downloaded through the API; billing read and
changed with ``If-Match``; every write's audit event names the token; a token without the
permission gets 403 and writes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from portal.exports.worker import ExportWorker
from tests.archive import verify_archive
from tests.factories import Client, add_api_token, bearer, events, org_with_events, text_of



def state(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k != "api_token"}  # a token's last use is bookkeeping


@pytest.fixture
async def program(app, su):
    """``program(org, role)``: a client holding a new token of ``org`` with ``role`` (its id in ``.token_id``)."""
    clients: list[Client] = []

    async def make(org, role: str, name: str = "Robot") -> Client:
        token_id, token = await add_api_token(su, org, role, name=name)
        c = Client(app)
        c.http.headers.update(bearer(token))
        c.token_id = token_id
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


# -- audit events ----------------------------------------------------------------------------------


async def test_cursor_walks_every_event_exactly_once_newest_first(make_org, su, program):
    org = await org_with_events(make_org, su, events=450)
    c = await program(org, "compliance_officer")
    total = await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1", org.id)
    seen, url, pages = [], f"/api/v1/orgs/{org.slug}/audit-events?limit=200", 0
    while url:
        r = await c.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [(datetime.fromisoformat(e["at"]), e["id"]) for e in body["items"]]
        url, pages = body["next"], pages + 1
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 200)
    assert seen == sorted(seen, reverse=True)
    event = next(e for e in (await c.get(f"/api/v1/orgs/{org.slug}/audit-events?limit=1&action=bulk.event")).json()["items"])
    assert event["action"] == "bulk.event" and event["target"] == {"type": None, "id": None, "label": "row 450"}
    assert event["after"]["pad"] and event["before"] is None and event["actor"] == {"id": None, "email": None}


async def test_filters_are_the_audit_page_s(make_world, su, program, client_for):
    w = await make_world()
    c = await program(w.org, "compliance_officer", name="Auditor")
    billing = await program(w.org, "billing_admin", name="Finance bot")
    base = f"/api/v1/orgs/{w.org.slug}"
    assert (await billing.request("PATCH", f"{base}/billing", json={"plan": "team"})).status_code == 200
    day = lambda d: d.strftime("%Y-%m-%d")  # noqa: E731
    old = datetime(2020, 5, 17, 12, tzinfo=timezone.utc)
    await su.execute(
        """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, target_label, after, ip, created_at)
           VALUES ($1, $2, $3, 'member.role_changed', 'membership', $4, 'Someone', '{"role": "member"}', '203.0.113.9', $5)""",
        w.org.id, w.org.owner.id, w.org.owner.email, str(w.target), old,
    )

    r = await c.get(f"{base}/audit-events", params={"action": "billing.updated"})
    [event] = r.json()["items"]
    assert event["actor"] == {"id": str(w.org.owner.id), "email": w.org.owner.email}
    assert event["actor_token_id"] == str(billing.token_id) and event["actor_label"] == "API token “Finance bot”"
    assert event["target"]["type"] == "billing_settings" and event["before"] == {"plan": "free"} and event["after"] == {"plan": "team"}

    dated = (await c.get(f"{base}/audit-events", params={"from": day(old), "to": day(old)})).json()["items"]
    assert [(e["action"], e["ip"], e["at"][:10]) for e in dated] == [("member.role_changed", "203.0.113.9", "2020-05-17")]
    assert dated[0]["target"] == {"type": "membership", "id": str(w.target), "label": "Someone"}
    since = (await c.get(f"{base}/audit-events", params={"from": day(old + timedelta(days=1)), "to": "9999-12-31"})).json()["items"]
    assert since and all(e["at"] > "2020-05-18" for e in since)
    by_owner = (await c.get(f"{base}/audit-events", params={"actor": w.org.owner.email.upper(), "limit": 200})).json()["items"]
    assert {e["action"] for e in by_owner} == {"billing.updated", "member.role_changed"}
    nobody = (await c.get(f"{base}/audit-events", params={"actor": "nobody@example.test"})).json()
    assert nobody == {"items": [], "next": None}

    # the filters survive the next link
    first = (await c.get(f"{base}/audit-events", params={"actor": w.org.owner.email, "limit": 1})).json()
    second = (await c.get(first["next"])).json()
    assert "actor=" in first["next"] and {first["items"][0]["action"], second["items"][0]["action"]} == {"billing.updated", "member.role_changed"}
    assert second["next"] is None

    for params, field in (({"action": "DROP TABLE;"}, "action"), ({"from": "yesterday"}, "from"), ({"to": "2020-02-30"}, "to"),
                          ({"from": "2021-01-02", "to": "2021-01-01"}, "to")):
        r = await c.get(f"{base}/audit-events", params=params)
        assert r.status_code == 422 and field in r.json()["errors"], (params, r.text)
    assert (await c.get(f"{base}/audit-events", params={"actor": "\x00", "after": "junk"})).status_code == 200

    # the same events as the audit page shows
    owner = await client_for(w.org.owner)
    assert "API token “Finance bot”" in text_of(await owner.get(f"/orgs/{w.org.slug}/audit"))


# -- exports ---------------------------------------------------------------------------------------


async def test_request_status_and_download_an_export(make_world, su, program):
    w = await make_world()
    c = await program(w.org, "compliance_officer", name="Archiver")
    base = f"/api/v1/orgs/{w.org.slug}/exports"
    r = await c.request("POST", base, headers={"Idempotency-Key": "nightly"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"{base}/{job['id']}" and job["status"] == "queued" and job["download"] is None
    again = await c.request("POST", base, headers={"Idempotency-Key": "nightly"})
    assert again.status_code == 202 and again.json() == job  # a retry requests nothing new
    assert (await c.get(f"{base}/{job['id']}/download")).status_code == 404  # not ready yet

    assert await ExportWorker().run_once(org_id=w.org.id) is not None
    done = (await c.get(r.headers["location"])).json()
    assert done["status"] == "done" and done["progress"] == 100 and done["download"] == f"{base}/{job['id']}/download"
    listed = (await c.get(base)).json()
    assert listed["items"][0] == done and listed["next"] is None and listed["rate_per_hour"] == 3
    assert listed["remaining"] == 1 and len(listed["items"]) == 2  # the world's own export counts too

    download = await c.get(done["download"])
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    data = download.content
    assert hashlib.sha256(data).hexdigest() == done["sha256"] and len(data) == done["size_bytes"]
    assert download.headers["repr-digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    manifest, _ = verify_archive(data)
    assert manifest["export_id"] == job["id"]

    for action in ("export.requested", "export.downloaded"):
        [event] = [e for e in await events(su, w.org, action) if e["target_id"] == job["id"]]
        assert event["actor_token_id"] == c.token_id and event["actor_label"] == "API token “Archiver”", action
    assert (await c.get(f"{base}/not-an-id")).status_code == 404
    assert (await c.get(f"{base}/00000000-0000-0000-0000-000000000000/download")).status_code == 404


async def test_export_rate_limit_is_a_429_with_retry_after(make_world, program, su):
    w = await make_world()
    c = await program(w.org, "compliance_officer")
    base = f"/api/v1/orgs/{w.org.slug}/exports"
    codes = [(await c.request("POST", base)).status_code for _ in range(2)]
    assert codes == [202, 202]  # the world's own export was the first of the hour's 3
    r = await c.request("POST", base)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and r.headers["content-type"].startswith("application/problem+json")
    assert (await c.get(base)).json()["remaining"] == 0
    assert await su.fetchval("SELECT count(*) FROM export_job WHERE org_id = $1", w.org.id) == 3


async def test_a_token_revoked_mid_download_gets_no_further_chunk(make_world, program, su, monkeypatch):
    """Each chunk is read in a transaction of its own that enters the org with the token again."""
    from portal.api import orgdata

    w = await make_world()
    c = await program(w.org, "compliance_officer")
    url = f"/api/v1/orgs/{w.org.slug}/exports/{w.export}/download"
    real, entered, revoke_at = orgdata.enter_token, [], [None]

    async def entering(scope, perm, *, lock):
        entered.append(perm)
        current = await real(scope, perm, lock=lock)
        if len(entered) == revoke_at[0]:
            await su.execute("UPDATE api_token SET revoked_at = now() WHERE id = $1", c.token_id)
        return current

    monkeypatch.setattr(orgdata, "enter_token", entering)
    r = await c.get(url)
    assert r.status_code == 200 and r.content.startswith(b"PK") and len(entered) == 3  # opened, one chunk, the end

    entered.clear()
    revoke_at[0] = 1  # revoked once the download was opened (and audited), before its first chunk
    with pytest.raises(Exception, match="after response started"):  # the stream is cut: no byte of the archive
        await c.get(url)
    assert len(entered) == 2  # the chunk's transaction was refused
    assert (await c.get(url)).status_code == 401  # and from now on, not even the start


# -- billing ---------------------------------------------------------------------------------------


async def test_billing_read_and_change_with_if_match(make_world, su, program, client_for):
    w = await make_world()
    c = await program(w.org, "billing_admin", name="Finance bot")
    url = f"/api/v1/orgs/{w.org.slug}/billing"
    r = await c.get(url)
    assert r.status_code == 200, r.text
    current = r.json()
    members = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", w.org.id)
    assert current["plan"] == "free" and current["seat_limit"] == 25 and current["spend_cap_cents"] is None
    assert current["seats"] == {"limit": 25, "members": members, "pending_invites": 1, "available": 25 - members - 1}
    etag = r.headers["etag"]

    r = await c.request("PATCH", url, json={"plan": "team", "spend_cap_cents": 250050, "billing_email": "AP@Example.test"},
                        headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["plan"], changed["spend_cap_cents"], changed["billing_email"], changed["seat_limit"]) == ("team", 250050, "ap@example.test", 25)
    assert r.headers["etag"] != etag and (await c.get(url)).headers["etag"] == r.headers["etag"]
    stale = await c.request("PATCH", url, json={"plan": "enterprise"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    assert await su.fetchval("SELECT plan FROM billing_settings WHERE org_id = $1", w.org.id) == "team"

    [event] = await events(su, w.org, "billing.updated")
    assert event["actor_token_id"] == c.token_id and event["actor_label"] == "API token “Finance bot”"
    assert json.loads(event["after"]) == {"plan": "team", "spend_cap_cents": 250050, "billing_email": "ap@example.test"}
    owner = await client_for(w.org.owner)
    assert "2500.50" in (await owner.get(f"/orgs/{w.org.slug}/billing")).text

    # nothing given, nothing changed; null clears
    assert (await c.request("PATCH", url, json={})).json() == changed
    cleared = (await c.request("PATCH", url, json={"spend_cap_cents": None, "billing_email": None})).json()
    assert cleared["spend_cap_cents"] is None and cleared["billing_email"] is None


async def test_billing_refusals(make_world, su, program, snapshot):
    w = await make_world()
    c = await program(w.org, "billing_admin")
    url = f"/api/v1/orgs/{w.org.slug}/billing"
    before = state(await snapshot(w.org.id))
    for body, field in (({"seat_limit": 2}, "seat_limit"), ({"billing_email": "not an email"}, "billing_email"),
                        ({"billing_email": "nul\u0000@example.test"}, "billing_email")):
        r = await c.request("PATCH", url, json=body)
        assert r.status_code == 422 and field in r.json()["errors"], (body, r.text)
    for body in ({"plan": "platinum"}, {"seat_limit": 0}, {"seat_limit": "ten"}, {"spend_cap_cents": -1}, {"spend_cap_cents": 10**20}):
        assert (await c.request("PATCH", url, json=body)).status_code == 400, body
    assert state(await snapshot(w.org.id)) == before


# -- denials ---------------------------------------------------------------------------------------


async def test_tokens_without_the_permission_get_403_and_write_nothing(make_world, program, snapshot):
    w = await make_world()
    base = f"/api/v1/orgs/{w.org.slug}"
    routes = {
        "audit.view": [("GET", "audit-events")],
        "export.use": [("POST", "exports"), ("GET", "exports"), ("GET", f"exports/{w.export}"), ("GET", f"exports/{w.export}/download")],
        "billing.manage": [("GET", "billing"), ("PATCH", "billing")],
    }
    holders = {"member": set(), "billing_admin": {"billing.manage"}, "compliance_officer": {"audit.view", "export.use"}}
    for role, held in holders.items():
        c = await program(w.org, role)
        before = state(await snapshot(w.org.id))
        for perm, calls in routes.items():
            for method, path in calls:
                r = await c.request(method, f"{base}/{path}", json={"plan": "enterprise"} if method == "PATCH" else None)
                if perm in held:
                    assert r.status_code < 300, (role, method, path, r.status_code)
                else:
                    assert r.status_code == 403, (role, method, path, r.status_code)
        if not held:
            assert state(await snapshot(w.org.id)) == before, role
