"""Two `portal serve` OS processes on one database (SECURITY 34, SPEC §15): the export quota,
concurrent acceptances of one invite, and the export workers' claims hold across them."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx

from tests.factories import unique
from tests.servers import portal_server


def _csrf_of(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def _session(su, user_id) -> str:
    from portal.accounts.sessions import token_hash

    token = uuid.uuid4().hex + uuid.uuid4().hex
    await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), user_id)
    return token


async def test_quotas_acceptances_and_export_claims_hold_across_two_processes(database, su, make_org, make_user, make_invite):
    from portal.accounts.sessions import COOKIE

    org = await make_org(name=f"Two {unique('p')}")
    invitee = await make_user()
    invite_token, _ = await make_invite(org, invitee.email)
    owner_cookie = {COOKIE: await _session(su, org.owner.id)}
    invitee_cookie = {COOKIE: await _session(su, invitee.id)}
    others = [await make_org() for _ in range(3)]
    with portal_server(database, "two-a.log", EXPORT_RATE="2") as a, portal_server(database, "two-b.log", EXPORT_RATE="2") as b:
        # The export quota (2 an hour here): requests alternate between the processes.
        codes = []
        for i in range(4):
            async with httpx.AsyncClient(base_url=(a, b)[i % 2], cookies=owner_cookie) as c:
                csrf = _csrf_of((await c.get(f"/orgs/{org.slug}/exports")).text)
                codes.append((await c.post(f"/orgs/{org.slug}/exports", data={"_csrf_token": csrf})).status_code)
        assert sorted(codes) == [303, 303, 429, 429], codes

        # Ten acceptances of one invite at once, half on each process: one membership.
        clients = [httpx.AsyncClient(base_url=(a, b)[i % 2], cookies=invitee_cookie) for i in range(10)]
        try:
            forms = [{"_csrf_token": _csrf_of((await c.get(f"/invites/{invite_token}")).text)} for c in clients]
            answers = await asyncio.gather(*(c.post(f"/invites/{invite_token}/accept", data=f) for c, f in zip(clients, forms)))
        finally:
            for c in clients:
                await c.aclose()
        assert all(r.status_code < 500 for r in answers), [r.status_code for r in answers]
        assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND user_id = $2", org.id, invitee.id) == 1
        assert await su.fetchval("SELECT member_count FROM organization WHERE id = $1", org.id) == 2

        # Export jobs of several orgs, claimed by the two processes' workers: each built once.
        for other in others:
            await su.execute(
                "INSERT INTO export_job (org_id, requested_by, requested_by_email) VALUES ($1, $2, $3)", other.id, other.owner.id, other.owner.email
            )
        ids = [other.id for other in others] + [org.id]
        for _ in range(240):
            pending = await su.fetchval("SELECT count(*) FROM export_job WHERE org_id = ANY($1::uuid[]) AND status <> 'done'", ids)
            if pending == 0:
                break
            await asyncio.sleep(0.25)
        assert pending == 0
    jobs = await su.fetch("SELECT id, attempts FROM export_job WHERE org_id = ANY($1::uuid[])", ids)
    assert len(jobs) == 5 and {j["attempts"] for j in jobs} == {1}  # never claimed twice
    completed = await su.fetch(
        "SELECT target_id, count(*) AS n FROM audit_event WHERE action = 'export.completed' AND org_id = ANY($1::uuid[]) GROUP BY target_id", ids
    )
    assert sorted(str(j["id"]) for j in jobs) == sorted(r["target_id"] for r in completed) and {r["n"] for r in completed} == {1}
    gaps = await su.fetchval(
        "SELECT count(*) FROM (SELECT job_id, count(*) AS n, max(seq) AS top FROM export_chunk WHERE org_id = ANY($1::uuid[]) GROUP BY job_id) c WHERE n <> top + 1",
        ids,
    )
    assert gaps == 0  # each archive's chunks once, in order
