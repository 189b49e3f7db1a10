"""SECURITY.md 30 over the whole lifecycle: a Hypothesis state machine that creates orgs, invites
(through the real mail path), accepts, changes roles, removes, leaves, transfers, requests exports
and deletes orgs, through HTTP, with a model predicting every status code. After every step:

* every live org has exactly one owner, and the database's memberships equal the model's, and
  so does its kept member count (``organization.member_count``);
* access only through a live membership: the org answers 200 to its members and the same 404 to
  everyone else, deleted orgs included;
* nobody grants a role above their own: every successful invite or role change came from the owner,
  and never granted `owner`.

Hypothesis runs in a worker thread; each rule submits its coroutine to the test's event loop.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.factories import PASSWORD, assert_member_count_exact, unique

NON_OWNER = ("member", "billing_admin", "compliance_officer")
PEOPLE = 5
ORG_SLOTS = 3


async def test_lifecycle_state_machine(app, su, make_user, client_for, monkeypatch):
    from portal import mail
    from portal.config import get_settings
    from portal.mail import queue as mail_queue

    loop = asyncio.get_running_loop()
    links: dict[str, str] = {}

    async def capture(message, *, message_id=None):
        if message.link:
            links[message.to] = message.link.removeprefix(get_settings().base_url)

    monkeypatch.setattr(mail, "send", capture)
    export_rate = get_settings().export_rate

    def run(coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.people = [run(make_user()) for _ in range(PEOPLE)]
            self.clients = {p.id: run(client_for(p)) for p in self.people}
            self.orgs: list[dict] = []  # {"slug", "id", "roles": {user_id: role}, "pending": {email: role}, "deleted", "exports"}

        # -- helpers --------------------------------------------------------------------------
        def post(self, person, path, data):
            return run(self.clients[person.id].post(path, data))

        def org(self, i):
            return self.orgs[i % len(self.orgs)]

        def person(self, i):
            return self.people[i % PEOPLE]

        def mid(self, org, person):
            return run(su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org["id"], person.id))

        def expect(self, r, code, what):
            body = r.text[:300] if r.status_code >= 500 else ""
            assert r.status_code == code, (what, code, r.status_code, body)

        def guard(self, org, actor, allowed_roles):
            """The status the guard gives ``actor``, or None when the action may proceed."""
            role = None if org["deleted"] else org["roles"].get(actor.id)
            if role is None:
                return 404
            return None if role in allowed_roles else 403

        # -- rules ----------------------------------------------------------------------------
        @precondition(lambda self: sum(not o["deleted"] for o in self.orgs) < ORG_SLOTS)
        @rule(p=st.integers(0, PEOPLE - 1))
        def create_org(self, p):
            creator = self.person(p)
            slug = unique("life")
            r = self.post(creator, "/orgs", {"name": slug, "slug": slug})
            self.expect(r, 303, "create")
            org_id = run(su.fetchval("SELECT id FROM organization WHERE slug = $1", slug))
            self.orgs.append({"slug": slug, "id": org_id, "roles": {creator.id: "owner"}, "pending": {}, "deleted": False, "exports": 0})

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9), t=st.integers(0, 9), role=st.sampled_from(NON_OWNER + ("owner",)))
        def invite(self, o, a, t, role):
            org, actor, target = self.org(o), self.person(a), self.person(t)
            r = self.post(actor, f"/orgs/{org['slug']}/invites", {"email": target.email, "role": role})
            code = self.guard(org, actor, {"owner"})
            if code is None:
                if role == "owner" or target.id in org["roles"] or target.email in org["pending"]:
                    code = 422
                else:
                    code = 303
            self.expect(r, code, "invite")
            if code == 303:
                run(mail_queue.drain())
                assert target.email in links, (target.email, sorted(links))
                org["pending"][target.email] = (role, links.pop(target.email))

        @precondition(lambda self: any(o["pending"] for o in self.orgs))
        @rule(o=st.integers(0, 9), t=st.integers(0, 9))
        def accept(self, o, t):
            org, target = self.org(o), self.person(t)
            if target.email not in org["pending"]:
                return
            role, link = org["pending"][target.email]
            r = self.post(target, f"{link}/accept", {})
            if org["deleted"]:
                self.expect(r, 404, "accept (deleted org)")
            else:
                self.expect(r, 303, "accept")
                org["roles"][target.id] = role
            del org["pending"][target.email]

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9), t=st.integers(0, 9), role=st.sampled_from(NON_OWNER + ("owner",)))
        def change_role(self, o, a, t, role):
            org, actor, target = self.org(o), self.person(a), self.person(t)
            mid = self.mid(org, target) if not org["deleted"] else None
            r = self.post(actor, f"/orgs/{org['slug']}/members/{mid or '00000000-0000-0000-0000-000000000000'}/role", {"role": role})
            code = self.guard(org, actor, {"owner"})
            if code is None:
                target_role = org["roles"].get(target.id)
                code = 422 if role == "owner" else 404 if target_role is None else 409 if target_role == "owner" else 303
            self.expect(r, code, "role")
            if code == 303:
                org["roles"][target.id] = role

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9), t=st.integers(0, 9))
        def remove(self, o, a, t):
            org, actor, target = self.org(o), self.person(a), self.person(t)
            mid = self.mid(org, target) if not org["deleted"] else None
            r = self.post(actor, f"/orgs/{org['slug']}/members/{mid or '00000000-0000-0000-0000-000000000000'}/remove", {})
            code = self.guard(org, actor, {"owner"})
            if code is None:
                target_role = org["roles"].get(target.id)
                code = 404 if target_role is None else 409 if target_role == "owner" else 303
            self.expect(r, code, "remove")
            if code == 303:
                del org["roles"][target.id]

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9))
        def leave(self, o, a):
            org, actor = self.org(o), self.person(a)
            r = self.post(actor, f"/orgs/{org['slug']}/leave", {})
            code = self.guard(org, actor, set(NON_OWNER)) or 303
            self.expect(r, code, "leave")
            if code == 303:
                del org["roles"][actor.id]

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9), t=st.integers(0, 9))
        def transfer(self, o, a, t):
            org, actor, target = self.org(o), self.person(a), self.person(t)
            mid = self.mid(org, target) if not org["deleted"] else None
            r = self.post(actor, f"/orgs/{org['slug']}/transfer", {"member_id": str(mid or "00000000-0000-0000-0000-000000000000"), "password": PASSWORD})
            code = self.guard(org, actor, {"owner"})
            if code is None:
                code = 422 if target.id == actor.id else 404 if target.id not in org["roles"] else 303
            self.expect(r, code, "transfer")
            if code == 303:
                org["roles"][actor.id], org["roles"][target.id] = "member", "owner"

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9))
        def request_export(self, o, a):
            org, actor = self.org(o), self.person(a)
            r = self.post(actor, f"/orgs/{org['slug']}/exports", {})
            code = self.guard(org, actor, {"owner", "compliance_officer"})
            if code is None:
                code = 303 if org["exports"] < export_rate else 429
            self.expect(r, code, "export")
            if code == 303:
                org["exports"] += 1

        @precondition(lambda self: self.orgs)
        @rule(o=st.integers(0, 9), a=st.integers(0, 9))
        def delete_org(self, o, a):
            org, actor = self.org(o), self.person(a)
            r = self.post(actor, f"/orgs/{org['slug']}/delete", {"confirm": org["slug"], "password": PASSWORD})
            code = self.guard(org, actor, {"owner"}) or 303
            self.expect(r, code, "delete")
            if code == 303:
                org["deleted"], org["roles"] = True, {}

        # -- invariants -----------------------------------------------------------------------
        @invariant()
        def database_matches_the_model(self):
            for org in self.orgs:
                rows = run(su.fetch("SELECT user_id, role FROM membership WHERE org_id = $1", org["id"]))
                in_database = {r["user_id"]: r["role"] for r in rows}
                assert in_database == org["roles"], (org["slug"], in_database, org["roles"])
                if org["deleted"]:
                    left = run(su.fetchval("SELECT count(*) FROM organization WHERE id = $1", org["id"]))
                    assert left == 0, (org["slug"], left)
                else:
                    owners = list(org["roles"].values()).count("owner")
                    assert owners == 1, (org["slug"], owners)
                    run(assert_member_count_exact(su, org["id"], len(org["roles"])))

        @invariant()
        def access_only_through_a_live_membership(self):
            if not self.orgs:
                return
            org = self.orgs[-1]
            for person in self.people:
                r = run(self.clients[person.id].get(f"/orgs/{org['slug']}"))
                expected = 200 if person.id in org["roles"] else 404
                assert r.status_code == expected, (org["slug"], expected, r.status_code)

    run_config = settings(
        max_examples=int(__import__("os").environ.get("LIFECYCLE_EXAMPLES", "20")),
        stateful_step_count=18,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    await asyncio.to_thread(run_state_machine_as_test, Lifecycle, settings=run_config)
