"""A Hypothesis state machine over create-member / role change / remove / leave / transfer
(SECURITY 30, the membership part): a model of who holds which role predicts every status code,
and after every step the database agrees with the model and keeps its invariants:

* exactly one owner;
* the kept member count (``organization.member_count``, what the members page and the dashboard
  show) equals a real count of the memberships;
* access only through a live membership (the org answers 404 to anyone who left or was removed);
* nobody grants a role above their own (only the owner changes roles, never to owner).

The app and its connection pool live in the test's event loop, so Hypothesis runs in a worker
thread and every rule submits its coroutine to that loop and waits for it.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from portal.accounts.service import MAX_FAILURES_PER_PAIR as REAUTH_MAX_FAILURES
from portal.tenancy.permissions import BUILT_IN_CHOICES, MATRIX, Role
from tests.factories import NON_OWNER, PASSWORD, assert_member_count_exact, membership_id

def grantable(actor: Role, role: Role) -> bool:
    return BUILT_IN_CHOICES[role].within(MATRIX[actor])


ROLE_CHOICES = (*NON_OWNER, *NON_OWNER, "owner", "superuser")
MAX_PEOPLE = 7
# Actors and targets: the current owner, one of the current members, or anyone who ever was a
# member (so that both the interesting successes and the refusals come up often).
WHO = st.tuples(st.sampled_from(("owner", "live", "live", "anyone")), st.integers(0, 50))


async def test_membership_state_machine(su, make_org, make_member, make_user, client_for):
    loop = asyncio.get_running_loop()

    def run(coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    class Membership(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.org = run(make_org())
            self.people: list = [self.org.owner]  # everyone who was ever a member, in order
            self.mids = {self.org.owner.id: run(self._mid(self.org.owner))}
            self.roles = {self.org.owner.id: "owner"}  # the model: live memberships only
            self.clients = {self.org.owner.id: run(client_for(self.org.owner))}
            self.wrong_passwords: dict = {}
            self.granted: list[tuple[str, str]] = []  # (actor role, role granted), every success

        async def _mid(self, user):
            return await membership_id(su, self.org, user)

        def person(self, who: tuple[str, int]):
            kind, i = who
            if kind == "owner":
                return next(p for p in self.people if self.roles.get(p.id) == "owner")
            pool = [p for p in self.people if p.id in self.roles] if kind == "live" else self.people
            return pool[i % len(pool)]

        @initialize(roles=st.lists(st.sampled_from(NON_OWNER), min_size=1, max_size=3))
        def first_members(self, roles):
            for role in roles:
                self.create_member(role)

        def post(self, user, path: str, data: dict | None = None):
            return run(self.clients[user.id].post(f"/orgs/{self.org.slug}{path}", data or {}))

        # -- rules ------------------------------------------------------------------------------
        @precondition(lambda self: len(self.people) < MAX_PEOPLE)
        @rule(role=st.sampled_from(NON_OWNER))
        def create_member(self, role):
            user = run(make_member(self.org, role, run(make_user())))
            self.people.append(user)
            self.mids[user.id] = run(self._mid(user))
            self.roles[user.id] = role
            self.clients[user.id] = run(client_for(user))

        @rule(a=WHO, t=WHO, role=st.sampled_from(ROLE_CHOICES))
        def change_role(self, a, t, role):
            actor, target = self.person(a), self.person(t)
            r = self.post(actor, f"/members/{self.mids[target.id]}/role", {"role": role})
            actor_role = self.roles.get(actor.id)
            if actor_role is None:
                expected = 404
            elif actor_role != "owner":
                expected = 403
            elif role not in NON_OWNER:
                expected = 422
            elif target.id not in self.roles:
                expected = 404
            elif target.id == actor.id or self.roles[target.id] == "owner":
                expected = 409
            else:
                expected = 303
            assert r.status_code == expected, (actor_role, self.roles.get(target.id), role, r.status_code)
            if expected == 303:
                assert grantable(Role(actor_role), Role(role))
                if self.roles[target.id] != role:
                    self.granted.append((actor_role, role))
                self.roles[target.id] = role

        @rule(a=WHO, t=WHO)
        def remove(self, a, t):
            actor, target = self.person(a), self.person(t)
            r = self.post(actor, f"/members/{self.mids[target.id]}/remove")
            actor_role = self.roles.get(actor.id)
            if actor_role is None:
                expected = 404
            elif actor_role != "owner":
                expected = 403
            elif target.id not in self.roles:
                expected = 404
            elif target.id == actor.id or self.roles[target.id] == "owner":
                expected = 409
            else:
                expected = 303
            assert r.status_code == expected, (actor_role, self.roles.get(target.id), r.status_code)
            if expected == 303:
                del self.roles[target.id]
                # their very next request has lost the org
                status = run(self.clients[target.id].get(f"/orgs/{self.org.slug}")).status_code
                assert status == 404, status

        @rule(a=WHO)
        def leave(self, a):
            actor = self.person(a)
            r = self.post(actor, "/leave")
            actor_role = self.roles.get(actor.id)
            expected = 404 if actor_role is None else 403 if actor_role == "owner" else 303
            assert r.status_code == expected, (actor_role, r.status_code)
            if expected == 303:
                del self.roles[actor.id]

        @rule(a=WHO, t=WHO, right_password=st.booleans())
        def transfer(self, a, t, right_password):
            actor, target = self.person(a), self.person(t)
            password = PASSWORD if right_password else "not-the-password"
            r = self.post(actor, "/transfer", {"member_id": str(self.mids[target.id]), "password": password})
            actor_role = self.roles.get(actor.id)
            if actor_role is None:
                expected = 404
            elif actor_role != "owner":
                expected = 403
            # The password is checked (and a failure counted) before anything about the target.
            elif self.wrong_passwords.get(actor.id, 0) >= REAUTH_MAX_FAILURES:
                expected = 429
            elif not right_password:
                expected = 422
                self.wrong_passwords[actor.id] = self.wrong_passwords.get(actor.id, 0) + 1
            elif target.id == actor.id:
                expected = 422
            elif target.id not in self.roles:
                expected = 404
            else:
                expected = 303
            assert r.status_code == expected, (actor_role, self.roles.get(target.id), right_password, r.status_code)
            if expected == 303:
                self.roles[actor.id] = "member"
                self.roles[target.id] = "owner"

        @rule(a=WHO)
        def visit(self, a):
            user = self.person(a)
            r = run(self.clients[user.id].get(f"/orgs/{self.org.slug}/members"))
            expected = 200 if user.id in self.roles else 404
            assert r.status_code == expected, (expected, r.status_code)
            if r.status_code == 200:
                n = len(self.roles)
                count = f"{n:,} {'member' if n == 1 else 'members'} in"
                assert count in r.text, count

        # -- invariants -------------------------------------------------------------------------
        @invariant()
        def database_agrees_with_the_model(self):
            rows = run(su.fetch("SELECT user_id, role FROM membership WHERE org_id = $1", self.org.id))
            in_database = {r["user_id"]: r["role"] for r in rows}
            assert in_database == self.roles, (in_database, self.roles)
            owners = [r["role"] for r in rows].count("owner")
            assert owners == 1, owners

        @invariant()
        def member_count_is_exact(self):
            run(assert_member_count_exact(su, self.org, len(self.roles)))

        @invariant()
        def nobody_granted_above_their_own(self):
            above = [(actor, role) for actor, role in self.granted if not grantable(Role(actor), Role(role))]
            assert above == [], above
            bad = run(
                su.fetchval(
                    """SELECT count(*) FROM audit_event e
                       WHERE e.org_id = $1 AND e.action = 'member.role_changed' AND e.after->>'role' = 'owner'""",
                    self.org.id,
                )
            )
            assert bad == 0, bad

    Membership.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    await asyncio.to_thread(run_state_machine_as_test, Membership, settings=Membership.TestCase.settings)
