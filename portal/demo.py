"""`portal demo`: a realistic demo organization, created once (running it again changes nothing)."""

from __future__ import annotations

from portal import clock
from portal.accounts.passwords import hash_password
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.db import engine as db
from portal.orgs import service as orgs
from portal.tenancy import scope as tenancy

DEMO_PASSWORD = "praesidia-demo"
DEMO_OWNER = ("dana@acme.example", "Dana Whitfield")
DEMO_PEOPLE = [
    ("bilal@acme.example", "Bilal Haddad", "billing_admin"),
    ("chen@acme.example", "Chen Wei", "compliance_officer"),
    ("ines@acme.example", "Inès Moreau", "member"),
    ("kofi@acme.example", "Kofi Mensah", "member"),
]
DEMO_ORG = ("Acme AI", "acme")
# Extra demo content from feature modules: async callables (scope, owner_id, owner_email) -> None.
DEMO_EXTENSIONS: list = []


async def _verified(email: str):
    """Mark a demo account's address verified (SPEC §10); its id, or None if there is none yet.
    Demo addresses are fictional (``.example``): no mail could ever prove them."""
    async with db.connection() as conn:
        return await conn.fetchval(
            "UPDATE app_user SET email_verified_at = coalesce(email_verified_at, $2) WHERE email = $1 RETURNING id", email, clock.now()
        )


async def _user(email: str, name: str):
    if existing := await _verified(email):
        return existing
    password_hash = await hash_password(DEMO_PASSWORD)  # before taking a connection
    async with db.connection() as conn:
        return await conn.fetchval(
            "INSERT INTO app_user (email, name, password_hash, email_verified_at) VALUES ($1, $2, $3, $4) RETURNING id",
            email,
            name,
            password_hash,
            clock.now(),
        )


async def load_demo() -> bool:
    """Create the demo org; return False if it already exists."""
    async with db.connection() as conn:
        present = await conn.fetchval("SELECT 1 FROM organization WHERE slug = $1", DEMO_ORG[1])
    if present:
        # A demo loaded before addresses were verified: its people can still accept invites.
        for email, *_ in (DEMO_OWNER, *DEMO_PEOPLE):
            await _verified(email)
        return False
    owner_id = await _user(*DEMO_OWNER)
    await orgs.create_org(user_id=owner_id, user_email=DEMO_OWNER[0], name=DEMO_ORG[0], slug=DEMO_ORG[1], ip="127.0.0.1")
    people = [(await _user(email, name), email, role) for email, name, role in DEMO_PEOPLE]
    async with db.transaction(user_id=owner_id) as conn:
        org_id = await conn.fetchval("SELECT id FROM organization WHERE slug = $1", DEMO_ORG[1])
        scope = await tenancy.enter(org_id)
        for user_id, email, role in people:
            await scope.execute("INSERT INTO membership (org_id, user_id, role) VALUES ({org}, $1, $2)", user_id, role)
            await audit.record_as(
                scope, actor_id=owner_id, actor_email=DEMO_OWNER[0], ip="127.0.0.1", action=Action.MEMBER_JOINED,
                target=("membership", user_id, email), after={"role": role},
            )
        for extend in DEMO_EXTENSIONS:
            await extend(scope, owner_id, DEMO_OWNER[0])
    return True


from portal.invites.service import demo_invite  # noqa: E402  (a feature's demo content)

DEMO_EXTENSIONS.append(demo_invite)

from portal.resources.demo import demo_resources  # noqa: E402  (a feature's demo content)

DEMO_EXTENSIONS.append(demo_resources)

from portal.roles.demo import demo_roles  # noqa: E402  (a feature's demo content)

DEMO_EXTENSIONS.append(demo_roles)
