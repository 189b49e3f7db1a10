"""Sign-in throttling slows guessers down without locking the owner out (SPEC §9, SECURITY 35).

Failures are counted per account and client (a hard limit), per client across accounts, and per
account: once an account is under attack, clients that already failed on it get fewer tries, but
a client that has not failed on it is never refused.
"""

from __future__ import annotations

import asyncio

from portal import clock
from portal.accounts import service
from tests.factories import PASSWORD, Client, membership_id, text_of

WRONG = "not-the-password-at-all"


async def _guesses(client: Client, email: str, n: int) -> list[int]:
    return [(await client.post("/login", {"email": email, "password": WRONG})).status_code for _ in range(n)]


async def _failures(su, email: str) -> int:
    return await su.fetchval("SELECT count(*) FROM login_attempt WHERE email = $1 AND NOT succeeded", email)


async def test_twenty_wrong_passwords_from_four_addresses_do_not_lock_the_owner_out(
    app, su, make_org, make_member, client_for
):
    org = await make_org()
    second = await make_org(owner=org.owner)
    heir = await make_member(org, "member")
    owner = await client_for(org.owner)  # signed in from the owner's own address
    attackers = [Client(app, ip=f"10.77.0.{i}") for i in range(1, 5)]

    codes = [await _guesses(a, org.owner.email, 5) for a in attackers]  # 20 wrong passwords
    # The first clients get the full five tries; once the account is under attack, later clients
    # get two, then wait. Every one of them was slowed down, none was let through.
    assert codes[0] == codes[1] == [422] * 5
    assert codes[2] == codes[3] == [422] * 2 + [429] * 3
    assert await _failures(su, org.owner.email) == 14

    # Each attacker address is past its limit: 429, a Retry-After of about the window, a clear message.
    for a in attackers:
        r = await a.post("/login", {"email": org.owner.email, "password": PASSWORD})
        assert r.status_code == 429
        assert 0 < int(r.headers["retry-after"]) <= service.THROTTLE_WINDOW.total_seconds()
        assert "Too many sign-in attempts" in text_of(r) and "reset your password" in text_of(r)

    # The owner signs in from a fresh address...
    fresh = Client(app, ip="10.77.1.1")
    r = await fresh.post("/login", {"email": org.owner.email, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    # ...and from their own address still re-enters the password for transfer and deletion.
    r = await owner.post(f"/orgs/{second.slug}/delete", {"confirm": second.slug, "password": PASSWORD})
    assert r.status_code == 303
    assert await su.fetchval("SELECT count(*) FROM organization WHERE id = $1", second.id) == 0
    heir_membership = await membership_id(su, org, heir)
    r = await owner.post(f"/orgs/{org.slug}/transfer", {"member_id": str(heir_membership), "password": PASSWORD})
    assert r.status_code == 303
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", heir_membership) == "owner"
    for c in (*attackers, fresh):
        await c.aclose()


async def test_many_addresses_never_refuse_one_that_has_not_failed(app, su, make_user):
    """Two guesses each from 30 addresses (60 failures): every guess is answered (no lock), and
    the account's owner still signs in from an address of their own."""
    user = await make_user()
    for i in range(30):
        c = Client(app, ip=f"10.78.0.{i + 1}")
        assert await _guesses(c, user.email, 2) == [422, 422]
        await c.aclose()
    assert await _failures(su, user.email) == 60
    c = Client(app, ip="10.78.1.1")
    assert (await c.post("/login", {"email": user.email, "password": PASSWORD})).status_code == 303
    await c.aclose()


async def test_a_client_that_failed_gets_fewer_tries_on_an_account_under_attack(app, make_user):
    user = await make_user()
    for i in range(service.ACCOUNT_UNDER_ATTACK // service.MAX_FAILURES_PER_PAIR):
        c = Client(app, ip=f"10.79.0.{i + 1}")
        await _guesses(c, user.email, service.MAX_FAILURES_PER_PAIR)
        await c.aclose()
    # The owner mistyped once from home: under attack, one more try, then a wait.
    home = Client(app, ip="10.79.1.1")
    assert await _guesses(home, user.email, 2) == [422, 422]
    r = await home.post("/login", {"email": user.email, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # Once the failures age out, the account is no longer under attack and nothing holds anyone back.
    clock.advance(service.THROTTLE_WINDOW)
    assert (await home.post("/login", {"email": user.email, "password": PASSWORD})).status_code == 303
    await home.aclose()


async def test_the_limit_lifts_when_the_failures_age_out(app, make_user):
    user = await make_user()
    c = Client(app, ip="10.80.0.1")
    assert await _guesses(c, user.email, service.MAX_FAILURES_PER_PAIR) == [422] * service.MAX_FAILURES_PER_PAIR
    r = await c.post("/login", {"email": user.email, "password": PASSWORD})
    wait = int(r.headers["retry-after"])
    assert r.status_code == 429 and service.THROTTLE_WINDOW.total_seconds() - 60 < wait <= service.THROTTLE_WINDOW.total_seconds() + 1
    clock.advance(service.THROTTLE_WINDOW)
    assert (await c.post("/login", {"email": user.email, "password": PASSWORD})).status_code == 303
    await c.aclose()


async def test_one_client_guessing_many_accounts_is_limited(app, make_user, monkeypatch):
    monkeypatch.setattr(service, "MAX_FAILURES_PER_IP", 6)
    users = [await make_user() for _ in range(4)]
    c = Client(app, ip="10.81.0.1")
    codes = [await _guesses(c, u.email, 2) for u in users[:3]]
    assert codes == [[422, 422]] * 3
    r = await c.post("/login", {"email": users[3].email, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # another client is not affected
    other = Client(app, ip="10.81.0.2")
    assert (await other.post("/login", {"email": users[3].email, "password": PASSWORD})).status_code == 303
    await c.aclose()
    await other.aclose()


async def test_parallel_guesses_from_a_fresh_address_on_an_account_under_attack(app, make_user):
    """The reduced limit is checked and recorded atomically too: of 10 parallel guesses from one
    new address, at most two are evaluated."""
    user = await make_user()
    for i in range(2):
        c = Client(app, ip=f"10.82.0.{i + 1}")
        await _guesses(c, user.email, 5)
        await c.aclose()
    c = Client(app, ip="10.82.1.1")
    await c.ensure_csrf()
    results = await asyncio.gather(*(c.post("/login", {"email": user.email, "password": f"{WRONG}-{i}"}) for i in range(10)))
    codes = sorted(r.status_code for r in results)
    assert codes == [422] * service.MAX_FAILURES_PER_PAIR_UNDER_ATTACK + [429] * (10 - service.MAX_FAILURES_PER_PAIR_UNDER_ATTACK)
    await c.aclose()


async def test_no_pooled_connection_is_held_while_the_password_is_checked(app, make_user, monkeypatch):
    """SPEC §9: sign-in and re-authentication record the attempt, release the connection, and only
    then wait for a hashing slot."""
    from portal.accounts import passwords
    from portal.db import engine as db

    held = []
    real = passwords.verify_password

    async def verify(password_hash, password):
        held.append(db.holding() or db.engine().current_transaction.get() is not None)
        return await real(password_hash, password)

    monkeypatch.setattr(service, "verify_password", verify)
    user = await make_user()
    assert await service.authenticate(user.email, PASSWORD, "10.83.0.1") == user.id
    await service.reauthenticate(user.email, PASSWORD, "10.83.0.1")
    try:
        await service.reauthenticate(user.email, WRONG, "10.83.0.1")
    except service.Invalid:
        pass
    else:
        raise AssertionError("a wrong password passed")
    assert held == [False, False, False]


async def test_an_ipv6_network_counts_as_one_client(app, make_user):
    """Addresses of one /64 are one client: the per-client budget is not 2^64 budgets."""
    from portal.errors import Invalid, TooManyRequests

    user = await make_user()
    outcomes = []
    for n in range(1, service.MAX_FAILURES_PER_PAIR + 3):
        try:
            await service.authenticate(user.email, WRONG, f"2001:db8:77:1::{n:x}")
            outcomes.append("ok")
        except Invalid:
            outcomes.append("wrong")
        except TooManyRequests:
            outcomes.append("throttled")
    assert outcomes == ["wrong"] * service.MAX_FAILURES_PER_PAIR + ["throttled"] * 2


async def test_an_account_has_a_ceiling_that_spares_clients_it_signed_in_from(app, make_user):
    """Guessing from ever more networks stops at a ceiling per account; a client that signed in
    to the account before (its owner's) still gets in with the right password."""
    from portal.errors import Invalid, TooManyRequests

    user = await make_user()
    home = "192.0.2.200"
    assert await service.authenticate(user.email, PASSWORD, home) == user.id
    for n in range(service.ACCOUNT_CEILING):  # one guess from each of many networks
        try:
            await service.authenticate(user.email, WRONG, f"2001:db8:{n:x}::1")
        except (Invalid, TooManyRequests):
            pass
    try:
        await service.authenticate(user.email, PASSWORD, "2001:db8:ffff::1")
        refused = False
    except TooManyRequests as exc:
        refused = exc.retry_after > 0
    assert refused
    assert await service.authenticate(user.email, PASSWORD, home) == user.id
