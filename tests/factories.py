"""Factories every domain's tests share: people, orgs and a signed-in client; the one world
builder (an org with a person of every role and an object of every kind); resources, invites,
exportable data written straight to the database; signing up the way a person does; and the
small readers the tests check the database with. The pytest fixtures that wrap them
(``make_user``, ``make_org``, ``make_member``, ``make_world``, ``client_for`` ...) are in
``tests/conftest.py``. No tests here."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import httpx
from argon2 import PasswordHasher

from portal import clock
from portal.db import registry
from portal.mail import queue as mail_queue
from tests.mail_sink import link_in, text_of as mail_text

PASSWORD = "correct-horse-battery-staple"
# Hashing is deliberately slow; factories reuse one hash (cheap parameters, same algorithm).
PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)

ROLES = ("owner", "billing_admin", "compliance_officer", "member")
NON_OWNER = ("billing_admin", "compliance_officer", "member")
DEFINITION = {"trigger": {"type": "manual"}, "steps": [{"id": "draft", "type": "prompt", "prompt": "Say hello"}]}

_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}-{uuid.uuid4().hex[:6]}"


# -- people, orgs and clients -------------------------------------------------------------------


@dataclass
class User:
    id: uuid.UUID
    email: str
    name: str


@dataclass
class OrgRef:
    id: uuid.UUID
    slug: str
    name: str
    owner: User


_addresses = itertools.count(1)


def _client_address() -> str:
    """A fresh client address per client: never reused within a run (Hypothesis re-seeds
    ``random`` per example, and throttles count per address)."""
    block, host = divmod(next(_addresses), 254)  # hosts .1 to .254: no two clients share one
    return f"10.{(block >> 8) & 255}.{block & 255}.{host + 1}"


class Client:
    """A browser-like client: keeps cookies, sends the CSRF token with every unsafe request."""

    def __init__(self, app, ip: str | None = None, *, base_url: str = "http://testserver"):
        ip = ip or _client_address()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(ip, 50000)),
            base_url=base_url,
            follow_redirects=False,
        )
        self._csrf_session: str | None = None  # the session cookie the CSRF cookie was last fetched under

    @property
    def csrf(self) -> str:
        # `__Host-portal_csrf` when the app's BASE_URL is https
        return self.http.cookies.get("__Host-portal_csrf") or self.http.cookies.get("portal_csrf") or ""

    async def ensure_csrf(self) -> str:
        """The CSRF token for the next unsafe request. The token belongs to the session, so after
        a test put a session cookie in the jar by hand, a page load picks up its token (as a
        browser's would)."""
        session = self.http.cookies.get("portal_session")
        if not self.csrf or session != self._csrf_session:
            await self.http.get("/healthz")
            self._csrf_session = self.http.cookies.get("portal_session")
        return self.csrf

    async def get(self, url: str, **kw) -> httpx.Response:
        return await self.http.get(url, **kw)

    async def post(self, url: str, data: dict | None = None, *, csrf: bool = True, htmx: bool = False, **kw) -> httpx.Response:
        data = dict(data or {})
        if csrf:
            data.setdefault("_csrf_token", await self.ensure_csrf())
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return await self.http.post(url, data=data, headers=headers, **kw)

    async def request(self, method: str, url: str, **kw) -> httpx.Response:
        return await self.http.request(method, url, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()


# -- resources ------------------------------------------------------------------------------------


async def add_agent(su, org_id, name: str | None = None, *, status: str = "active") -> uuid.UUID:
    return await su.fetchval(
        "INSERT INTO agent (org_id, name, model, status) VALUES ($1, $2, 'claude-sonnet-4-5', $3) RETURNING id",
        org_id, name or unique("agent"), status,
    )


async def add_workflow(su, org_id, agent_id, name: str | None = None) -> uuid.UUID:
    return await su.fetchval(
        "INSERT INTO workflow (org_id, name, definition, agent_id) VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
        org_id, name or unique("workflow"), json.dumps(DEFINITION), agent_id,
    )


async def add_connection(su, org_id, name: str | None = None) -> uuid.UUID:
    return await su.fetchval(
        """INSERT INTO connection (org_id, name, kind, config, secret_ciphertext, secret_set_at)
           VALUES ($1, $2, 'slack', '{"workspace": "acme"}', 'v1.not-a-real-ciphertext', now()) RETURNING id""",
        org_id, name or unique("connection"),
    )


async def add_team(su, org_id, name: str | None = None, members: tuple = ()) -> uuid.UUID:
    team_id = await su.fetchval("INSERT INTO team (org_id, name) VALUES ($1, $2) RETURNING id", org_id, name or unique("team"))
    for membership_id in members:
        await su.execute("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", org_id, team_id, membership_id)
    return team_id


async def add_role(su, org_id, name: str | None = None, permissions: tuple[str, ...] = ("audit.view", "export.use")) -> uuid.UUID:
    """A custom role of the org (nobody holds it yet)."""
    return await su.fetchval(
        "INSERT INTO org_role (org_id, name, permissions) VALUES ($1, $2, $3) RETURNING id",
        org_id, name or unique("role"), list(permissions),
    )


async def give_role(su, org_id, membership: uuid.UUID, role_id: uuid.UUID) -> None:
    await su.execute(
        "UPDATE membership SET role = 'custom', custom_role_id = $3 WHERE org_id = $1 AND id = $2", org_id, membership, role_id
    )


def bearer(token: str) -> dict[str, str]:
    """The header a program sends its API token in."""
    return {"Authorization": f"Bearer {token}"}


async def add_api_token(su, org: OrgRef, role: str = "member", *, name: str | None = None, custom_role_id=None,
                        created_by: User | None = None, days: int = 30, agent_id=None, manages_agents: bool = False) -> tuple[uuid.UUID, str]:
    """An API token of ``org`` (created by its owner unless ``created_by``): (id, the token). With
    ``agent_id``, a token of that agent's (role ``agent``); ``manages_agents``: a SCIM token that
    may provision the org's agents too."""
    token = "prt_" + secrets.token_urlsafe(32)
    creator = created_by or org.owner
    token_id = await su.fetchval(
        """INSERT INTO api_token (org_id, name, prefix, token_hash, role, custom_role_id, agent_id, created_by, created_by_email,
                                  expires_at, manages_agents)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(days => $10), $11) RETURNING id""",
        org.id, name or unique("token"), token[:12], hashlib.sha256(token.encode()).hexdigest(),
        "agent" if agent_id else role, custom_role_id, agent_id, creator.id, creator.email, days, manages_agents,
    )
    return token_id, token


async def add_invite(su, org: OrgRef, email: str | None = None, role: str = "member") -> uuid.UUID:
    """A pending invite whose token nobody knows (``make_invite`` returns one you can use)."""
    return await su.fetchval(
        """INSERT INTO invite (org_id, email, role, token_hash, invited_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, now() + interval '7 days') RETURNING id""",
        org.id, email or f"{unique('inv')}@example.test", role, hashlib.sha256(secrets.token_bytes(16)).hexdigest(), org.owner.id,
    )


async def add_finished_export(su, org: OrgRef) -> uuid.UUID:
    """A finished export job whose archive is an empty ZIP."""
    data = b"PK\x05\x06" + b"\x00" * 18
    job = await su.fetchval(
        """INSERT INTO export_job (org_id, requested_by, requested_by_email, status, progress, size_bytes, sha256,
                                   filename, finished_at, expires_at)
           VALUES ($1, $2, $3, 'done', 100, $4, $5, 'x.zip', now(), now() + interval '1 day') RETURNING id""",
        org.id, org.owner.id, org.owner.email, len(data), hashlib.sha256(data).hexdigest(),
    )
    await su.execute("INSERT INTO export_chunk (org_id, job_id, seq, data) VALUES ($1, $2, 0, $3)", org.id, job, data)
    return job


# -- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    """One org with one person of every role and, unless built with ``objects=False``, one object
    of every kind:

    * ``users``: role -> User (and, built with ``outsiders=True``, the personas ``outsider`` — the
      owner of another org — and ``removed`` — a former member);
    * ``memberships``: role -> membership id;
    * ``agent_used`` (run by ``workflow``), ``agent_free``, ``connection`` (with a secret set),
      ``team`` (whose one member is the ``member`` role: ``team_member``), ``target`` (the
      membership of one more plain member, for role changes and removals to act on), ``invite``
      (pending), ``export`` (finished), ``role`` (a custom role nobody holds), ``api_token`` (a
      member-role token of the owner's), ``agent_token`` (a token of ``agent_free``'s);
    * ``params``: a value in this org for every path parameter of the route table (``slug``,
      ``agent_id`` ...), for ``tests.routes.fill``.
    """

    org: OrgRef
    users: dict[str, User]
    memberships: dict[str, uuid.UUID]
    params: dict[str, str] = field(default_factory=dict)
    agent_used: uuid.UUID | None = None
    agent_free: uuid.UUID | None = None
    workflow: uuid.UUID | None = None
    connection: uuid.UUID | None = None
    team: uuid.UUID | None = None
    team_member: uuid.UUID | None = None
    target: uuid.UUID | None = None
    invite: uuid.UUID | None = None
    export: uuid.UUID | None = None
    role: uuid.UUID | None = None
    api_token: uuid.UUID | None = None
    agent_token: uuid.UUID | None = None  # a token of ``agent_free``'s
    scim_token: uuid.UUID | None = None  # the org's SCIM token


async def build_world(su, make_org, make_member, *, objects: bool = True, outsiders: bool = False) -> World:
    """The ``make_world`` fixture's work (see ``World``)."""
    org = await make_org()
    users = {"owner": org.owner}
    for role in NON_OWNER:
        users[role] = await make_member(org, role)
    memberships = {role: await membership_id(su, org, user) for role, user in users.items()}
    w = World(org, users, memberships, {"slug": org.slug})
    if objects:
        w.target = await membership_id(su, org, await make_member(org, "member"))
        w.agent_used = await add_agent(su, org.id)
        w.agent_free = await add_agent(su, org.id)
        w.workflow = await add_workflow(su, org.id, w.agent_used)
        w.connection = await add_connection(su, org.id)
        w.team_member = memberships["member"]
        w.team = await add_team(su, org.id, members=(w.team_member,))
        w.invite = await add_invite(su, org)
        w.export = await add_finished_export(su, org)
        w.role = await add_role(su, org.id)
        w.api_token, _ = await add_api_token(su, org)
        w.agent_token, _ = await add_api_token(su, org, agent_id=w.agent_free)
        w.scim_token, _ = await add_api_token(su, org, "scim")
        w.params.update(
            role_id=str(w.role),
            token_id=str(w.api_token),
            agent_token_id=str(w.agent_token),
            scim_token_id=str(w.scim_token),
            agent_id=str(w.agent_free),
            workflow_id=str(w.workflow),
            connection_id=str(w.connection),
            team_id=str(w.team),
            membership_id=str(w.team_member),
            member_id=str(w.target),
            invite_id=str(w.invite),
            export_id=str(w.export),
            token=secrets.token_urlsafe(32),
            file_path="app.css",
            path="openapi.json",  # the API's OpenAPI document, /api/v1/{path}
        )
    if outsiders:
        other = await make_org()
        w.users["outsider"] = other.owner  # an owner — of another org
        removed = await make_member(org, "compliance_officer")
        await su.execute("DELETE FROM membership WHERE org_id = $1 AND user_id = $2", org.id, removed.id)
        w.users["removed"] = removed
    return w


async def restock(su, w: World, make_member) -> dict[str, str]:
    """``w.params`` with a new agent, workflow, connection, team (with the owner in it), plain
    member, pending invite and finished export: for a second walk over the routes after a first
    one deleted, removed or revoked the world's own."""
    team = await add_team(su, w.org.id, members=(w.memberships["owner"],))
    return {
        **w.params,
        "agent_id": str(await add_agent(su, w.org.id)),
        "workflow_id": str(await add_workflow(su, w.org.id, await add_agent(su, w.org.id))),
        "connection_id": str(await add_connection(su, w.org.id)),
        "team_id": str(team),
        "membership_id": str(w.memberships["owner"]),
        "member_id": str(await membership_id(su, w.org, await make_member(w.org, "member"))),
        "invite_id": str(await add_invite(su, w.org)),
        "export_id": str(await add_finished_export(su, w.org)),
    }


# -- data for exports and deletion ----------------------------------------------------------------


def has(*tables: str) -> bool:
    registry.load_all()
    return all(t in registry.TENANT_TABLES for t in tables)


async def seed(su, make_member, org, tag: str) -> dict:
    """Give ``org`` members, billing settings, audit events and — where those tables exist in this
    build — agents, workflows, connections (with a secret), teams and invites of every state.
    Every free-text value carries ``tag`` (a canary)."""
    info: dict = {"secrets": []}
    members = [await make_member(org, role, None) for role in ("member", "billing_admin", "compliance_officer")]
    await su.execute("UPDATE app_user SET name = $2 WHERE id = $1", members[0].id, f"Person {tag}")
    await su.execute("UPDATE billing_settings SET billing_email = $2, plan = 'team' WHERE org_id = $1", org.id, f"billing-{tag}@example.test")
    for i in range(5):
        await su.execute(
            """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, target_label, before, after, ip)
               VALUES ($1, $2, $3, 'test.event', 'thing', $4, $5, $6::jsonb, $7::jsonb, '10.0.0.1')""",
            org.id, org.owner.id, org.owner.email, str(i), f"label {tag} {i}",
            json.dumps({"value": f"before {tag}"}), json.dumps({"value": f"after {tag}", "n": i}),
        )
    if has("agent"):
        agent = await su.fetchval(
            "INSERT INTO agent (org_id, name, description, model) VALUES ($1, $2, $3, 'gpt-4o') RETURNING id",
            org.id, f"Agent {tag}", f"does {tag} things",
        )
        await su.execute("INSERT INTO agent (org_id, name, model, status) VALUES ($1, $2, 'claude', 'paused')", org.id, f"Paused {tag}")
        if has("workflow"):
            await su.execute(
                "INSERT INTO workflow (org_id, name, agent_id, definition) VALUES ($1, $2, $3, $4::jsonb)",
                org.id, f"Flow {tag}", agent, json.dumps({"steps": [{"say": f"hello {tag}"}]}),
            )
    if has("connection"):
        secret = f"SECRET-{tag}-{secrets.token_hex(8)}"
        info["secrets"].append(secret)
        await su.execute(
            """INSERT INTO connection (org_id, name, kind, config, secret_ciphertext, secret_set_at)
               VALUES ($1, $2, 'webhook', $3::jsonb, $4, now())""",
            org.id, f"Hook {tag}", json.dumps({"url": f"https://{tag}.example.test/hook"}), secret,
        )
        await su.execute(
            "INSERT INTO connection (org_id, name, kind) VALUES ($1, $2, 'slack')", org.id, f"Plain {tag}"
        )
    if has("team", "team_member"):
        team = await su.fetchval("INSERT INTO team (org_id, name, description) VALUES ($1, $2, '') RETURNING id", org.id, f"Team {tag}")
        await su.execute("INSERT INTO team (org_id, name) VALUES ($1, $2)", org.id, f"Empty team {tag}")
        for m in members[:2]:
            mid = await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, m.id)
            await su.execute("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", org.id, team, mid)
    if has("invite"):
        info["invite_tokens"] = []
        now = clock.now()
        for state in ("pending", "revoked", "accepted", "expired"):
            token = secrets.token_urlsafe(32)
            info["invite_tokens"].append((state, token))
            token_hash = hashlib.sha256(token.encode()).hexdigest()
            info["secrets"].append(token_hash)
            created = now - timedelta(days=10) if state == "expired" else now
            await su.execute(
                """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, revoked_at, accepted_at)
                   VALUES ($1, $2, 'member', $3, $4, $5, $6, $7, $8)""",
                org.id, f"{state}-{tag}@example.test".lower(), token_hash, org.owner.id, created,
                created + timedelta(days=7),
                now if state == "revoked" else None,
                now if state == "accepted" else None,
            )
    info["members"] = members
    return info


async def org_with_events(make_org, su, events: int = 1500):
    """An org with ``events`` padded audit events: an export of it takes many chunks."""
    org = await make_org()
    await su.execute(
        """INSERT INTO audit_event (org_id, action, target_label, after)
           SELECT $1, 'bulk.event', 'row ' || g, jsonb_build_object('pad', repeat(md5(g::text), 8))
           FROM generate_series(1, $2) g""",
        org.id, events,
    )
    return org


# -- signing up and inviting the way a person does ------------------------------------------------

VERIFY_LINK = re.compile(r"http://testserver(/verify-email/[A-Za-z0-9_.-]+)")
SIGNUP_PASSWORD = "a-long-password-1"


async def sign_up(client, email: str, *, name: str = "Ada Lovelace", password: str = SIGNUP_PASSWORD, next: str | None = None, **extra):
    """Submit the sign-up form; asserts the one answer every sign-up gets (no session)."""
    form = {"email": email, "name": name, "password": password, **extra}
    if next is not None:
        form["next"] = next
    r = await client.post("/signup", form)
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    location = urlsplit(r.headers["location"])
    assert location.path == "/signup"
    assert parse_qs(location.query)["sent"] == ["1"]
    assert "portal_session" not in r.cookies
    await mail_queue.drain()
    return r


def mail_to(messages: list[EmailMessage], email: str, subject_part: str = "") -> EmailMessage:
    """The newest message to ``email`` (whose subject contains ``subject_part``)."""
    for message in reversed(messages):
        if message["To"] == email and subject_part in message["Subject"]:
            return message
    raise AssertionError(f"no mail to {email} ({subject_part!r}); got {[(m['To'], m['Subject']) for m in messages]}")


def verify_path(message: EmailMessage) -> str:
    """The confirmation link's path (the same in the text and the HTML part)."""
    path = link_in(message, VERIFY_LINK)
    assert "48 hours" in mail_text(message)
    return path


async def confirm(client, path: str, email: str, password: str = SIGNUP_PASSWORD):
    """Open the link, sign in when the page asks, press Confirm: the POST's response."""
    page = await client.get(path)
    assert page.status_code == 200, page.status_code
    if "Sign in to confirm" in page.text:
        r = await client.post("/login", {"email": email, "password": password, "next": path})
        assert r.status_code == 303 and r.headers["location"] == path, (r.status_code, r.headers.get("location"))
        page = await client.get(path)
    assert "Confirm my email address" in page.text
    return await client.post(path)


async def send_invite(owner_client, org, email: str, role: str = "member"):
    r = await owner_client.post(f"/orgs/{org.slug}/invites", {"email": email, "role": role})
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    await mail_queue.drain()
    return r


# -- reading what happened ------------------------------------------------------------------------


def text_of(response: httpx.Response) -> str:
    """The visible text of a page, whitespace collapsed (for asserting on messages)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


_CSRF = [
    (re.compile(r'name="_csrf_token" value="[^"]*"'), 'name="_csrf_token" value=""'),
    (re.compile(r'"X-CSRFToken": "[^"]*"'), '"X-CSRFToken": ""'),
]


def without_nonces(html: str) -> str:
    """A page with its per-request values (the CSRF token) blanked, for comparing pages."""
    for pattern, blank in _CSRF:
        html = pattern.sub(blank, html)
    return html


def _org_id(org) -> uuid.UUID:
    return org.id if hasattr(org, "id") else org


async def membership_id(su, org, user):
    return await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, user.id)


async def roles_of(su, org) -> dict:
    rows = await su.fetch("SELECT id, role FROM membership WHERE org_id = $1", org.id)
    return {r["id"]: r["role"] for r in rows}


async def owner_count(su, org) -> int:
    return await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND role = 'owner'", org.id)


async def events(su, org, action: str | None = None) -> list:
    """An org's audit events (``org``: an OrgRef or its id), oldest first; only ``action``'s if given."""
    if action:
        return await su.fetch(
            "SELECT * FROM audit_event WHERE org_id = $1 AND action = $2 ORDER BY created_at, id", _org_id(org), action
        )
    return await su.fetch("SELECT * FROM audit_event WHERE org_id = $1 ORDER BY created_at, id", _org_id(org))


async def assert_member_count_exact(su, org, expected: int | None = None) -> None:
    """The org row's kept count equals a real count of its memberships (and ``expected``)."""
    org_id = _org_id(org)
    kept, counted = await su.fetchrow(
        "SELECT member_count, (SELECT count(*) FROM membership WHERE org_id = $1) FROM organization WHERE id = $1", org_id
    )
    assert kept == counted, f"member_count {kept} but {counted} memberships"
    if expected is not None:
        assert counted == expected, (counted, expected)
