"""The transactional outbox: a mail is a row of ``mail_outbox`` written in the transaction of the
change that causes it, and a worker delivers it after the commit (SPEC §15).

So a change and its mail commit or roll back together: an invite whose transaction rolls back
sends nothing, and one that commits is mailed even if the process dies the next instant — the
worker of any process (this one after a restart, or another) finds the row.

Delivery, one row at a time:

* **Claim** in a short transaction (the org's own for org mail; the worker's for account mail):
  ``FOR UPDATE SKIP LOCKED``, status ``sending``, ``attempts + 1``, a lease (``lease_until``).
  The attempt number is the lease: the outcome is written only if it still holds.
* **Send** holding no connection (SMTP can take seconds). The Message-ID is the row's id, the same
  on every attempt: if a sender dies after the server took the message but before it recorded
  that, the retry is the same message again, which mail clients show once.
* **Record** the outcome: ``sent`` (the sealed message is wiped); or, on a temporary failure, back
  to ``queued`` with an exponential backoff (``MAIL_RETRY_BASE`` × 2^(attempt−1), at most an
  hour); after ``MAIL_MAX_ATTEMPTS``, or at once when the server refuses the address for good,
  ``dead``: shown to the org's owners with a way to try again.

The message is sealed (AES-GCM, key derived from ``SECRET_KEY``, bound to the row's id) because
its links are live credentials: a copy of the database alone does not reveal them.

Tests deliver with ``await drain()``; every app process runs ``MailWorker`` in its lifespan
(``RUN_WORKERS``), and they share the queue through the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, NamedTuple
from uuid import UUID

from cryptography.exceptions import InvalidTag

from portal import clock, mail, sealing
from portal.config import get_settings
from portal.db import engine as db
from portal.jobs import PollingWorker
from portal.tenancy import scope as tenancy
from portal.tenancy.scope import TenantScope

log = logging.getLogger("portal.mail")

LEASE = timedelta(minutes=5)  # how long a claimed mail is its sender's; then another may take it
SEND_TIMEOUT = LEASE / 2  # the whole hand-over to the mail server, however slow it is
MAX_BACKOFF = timedelta(hours=1)
KEEP_FINISHED = timedelta(days=30)  # sent, cancelled and dead rows are purged after this

# -- sealing ------------------------------------------------------------------------------------

_INFO = b"praesidia/mail-outbox/v1"


def _seal(body: dict[str, Any], mail_id: UUID) -> bytes:
    return sealing.seal(json.dumps(body).encode(), info=_INFO, aad=mail_id.bytes)


def _open(sealed: bytes, mail_id: UUID) -> dict[str, Any]:
    return json.loads(sealing.open_sealed(sealed, info=_INFO, aad=mail_id.bytes))


# -- queueing (inside the caller's transaction) --------------------------------------------------

class _Statement(NamedTuple):
    """One statement on an org's mail (``mail_outbox``, through the org's scope) and on a
    person's mail outside any org (``account_mail``, a global table)."""

    org: str
    person: str


def _on_both(sql: str) -> _Statement:
    """``sql`` with ``{table}`` and ``{key}`` (the row's key, compared with ``= $1``) for each table."""
    return _Statement(sql.format(table="mail_outbox", key="org_id = {org} AND id"), sql.format(table="account_mail", key="id"))


_INSERT = _Statement(
    "INSERT INTO mail_outbox (id, org_id, kind, ref_id, recipient, subject, payload, run_after, created_at) "
    "VALUES ($1, {org}, $2, $3, $4, $5, $6, $7, $7)",
    "INSERT INTO account_mail (id, kind, ref_id, recipient, subject, payload, run_after, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
)


async def enqueue(message: mail.Mail, *, scope: TenantScope | None = None, ref_id: UUID | None = None) -> UUID:
    """Queue ``message`` in the open transaction: an org's mail through the org's ``scope``, a
    person's mail outside any org without one. It goes out once that transaction commits, and
    never if it rolls back."""
    body = {"text": message.text, "html": message.html, "link": message.link}
    return await _insert(message.kind, message.to, message.subject, body, scope, ref_id)


async def enqueue_composed(kind: str, recipient: str, data: dict[str, Any]) -> UUID:
    """Queue a person's mail that the worker composes when it sends it (``composer(kind)``).

    For the public forms that must answer the same, with the same work, whether or not an address
    has an account (sign-up, password reset): the request only queues the address and ``data``;
    whether there is anything to send, and what, is decided later, away from the request."""
    return await _insert(kind, recipient, f"({kind})", {"compose": data}, None, None)


async def _insert(kind: str, recipient: str, subject: str, body: dict, scope: TenantScope | None, ref_id: UUID | None) -> UUID:
    mail_id = uuid.uuid4()
    now = clock.now()
    args = (mail_id, kind, ref_id, recipient[:320], mail.message.one_line(subject, 300), _seal(body, mail_id), now)
    if scope is not None:
        await scope.execute(_INSERT.org, *args)
    else:
        await db.current_connection().execute(_INSERT.person, *args)
    return mail_id


Composer = Callable[[str, dict[str, Any]], Awaitable["mail.Mail | None"]]
_COMPOSERS: dict[str, Composer] = {}


def composer(kind: str) -> Callable[[Composer], Composer]:
    """Register the function that composes ``kind`` mail when it is sent: ``(recipient, data)``
    → the message, or None when there is nothing to send. It runs in the worker, holding nothing."""

    def register(fn: Composer) -> Composer:
        _COMPOSERS[kind] = fn
        return fn

    return register


async def cancel(scope: TenantScope, ref_id: UUID) -> None:
    """Drop the mail about ``ref_id`` that has not gone out (an invite revoked or replaced): queued,
    being sent (its outcome is then not recorded as a retry), or given up."""
    await scope.execute(
        "UPDATE mail_outbox SET status = 'cancelled', payload = NULL "
        "WHERE org_id = {org} AND ref_id = $1 AND status IN ('queued', 'sending', 'dead')",
        ref_id,
    )


async def retry(scope: TenantScope, mail_id: UUID) -> bool:
    """Put a dead org mail back in the queue (an owner's "try again") with a fresh budget of
    attempts; False if it is not dead. ``attempts`` keeps counting: it is the lease."""
    done = await scope.fetchval(
        "UPDATE mail_outbox SET status = 'queued', attempt_limit = attempts + $3, run_after = $2, last_error = NULL "
        "WHERE org_id = {org} AND id = $1 AND status = 'dead' AND payload IS NOT NULL RETURNING id",
        mail_id,
        clock.now(),
        get_settings().mail_max_attempts,
    )
    return done is not None


# -- delivery -----------------------------------------------------------------------------------

WORKER_MODE = "SELECT set_config('app.mail_worker', 'on', true)"
_DUE = (
    "SELECT id, org_id, run_after FROM mail_outbox "  # unscoped: the worker's queue across orgs (read-only policy)
    "WHERE (status = 'queued' AND run_after <= $1) OR (status = 'sending' AND lease_until < $1) "
    "UNION ALL SELECT id, NULL, run_after FROM account_mail "
    "WHERE (status = 'queued' AND run_after <= $1) OR (status = 'sending' AND lease_until < $1) "
    "ORDER BY run_after LIMIT $2"
)
# Each statement names one mail row by its key.
_CLAIM = _on_both("""
UPDATE {table} SET status = 'sending', attempts = attempts + 1, lease_until = $2
WHERE {key} = $1 AND id = (SELECT id FROM {table}
            WHERE {key} = $1
              AND ((status = 'queued' AND run_after <= $3) OR (status = 'sending' AND lease_until < $3))
            FOR UPDATE SKIP LOCKED)
RETURNING id, kind, ref_id, recipient, subject, payload, attempts, attempt_limit
""")
_SENT = _on_both("""
UPDATE {table} SET status = 'sent', payload = NULL, sent_at = $3, lease_until = NULL, last_error = NULL
WHERE {key} = $1 AND status = 'sending' AND attempts = $2 RETURNING ref_id
""")
_AGAIN = _on_both("""
UPDATE {table} SET status = $3, run_after = $4, lease_until = NULL, last_error = $5,
       payload = CASE WHEN $6 THEN NULL ELSE payload END
WHERE {key} = $1 AND status = 'sending' AND attempts = $2 RETURNING ref_id
""")
_FINISHED = "status IN ('sent', 'cancelled', 'dead') AND created_at < $1 LIMIT 1000"
_PURGE = _Statement(  # finished rows across orgs (the worker's purge policy), by their key (org_id, id)
    f"DELETE FROM mail_outbox WHERE (org_id, id) IN (SELECT org_id, id FROM mail_outbox WHERE {_FINISHED})",  # unscoped: purge
    f"DELETE FROM account_mail WHERE id IN (SELECT id FROM account_mail WHERE {_FINISHED})",
)


@dataclass(frozen=True)
class Claim:
    id: UUID
    org_id: UUID | None
    kind: str
    ref_id: UUID | None
    recipient: str
    subject: str
    payload: bytes
    attempt: int
    limit: int

    def last(self) -> bool:
        return self.attempt >= self.limit


def backoff(attempt: int) -> timedelta:
    """How long after failed attempt ``attempt`` (1, 2, …) the next one may start."""
    return min(get_settings().mail_retry_base * (2 ** (attempt - 1)), MAX_BACKOFF)


async def _on_row(org_id: UUID | None, sql: _Statement, *args: Any, then: tuple[str, tuple] | None = None):
    """One statement on one mail row, in a short transaction of its own: through the org's scope
    for an org's mail, on ``account_mail`` for a person's. ``then``: a statement on the org's own
    tables in the same transaction, run if the first one matched (an invite's delivery outcome)."""
    async with db.transaction() as conn:
        if org_id is None:
            return await conn.fetchrow(sql.person, *args)
        scope = await tenancy.enter(org_id)
        row = await scope.fetchrow(sql.org, *args)
        if row is not None and then is not None:
            await scope.execute(then[0], *then[1])
        return row


# What else an org mail's outcome updates, by kind, in the same transaction (``on_outcome``).
_AFTER_SENT: dict[str, str] = {}
_AFTER_DEAD: dict[str, str] = {}


def on_outcome(kind: str, *, sent: str, dead: str) -> None:
    """Register what an org's ``kind`` mail's outcome also updates, in the transaction that records
    it: ``sent`` with ($1 the mail's ref_id, $2 when), ``dead`` with ($1 ref_id, $2 the reason);
    statements on the org's tables (``{org}``)."""
    _AFTER_SENT[kind], _AFTER_DEAD[kind] = sent, dead


async def _due(now: datetime, limit: int) -> list[tuple[UUID, UUID | None]]:
    async with db.transaction() as conn:
        await conn.execute(WORKER_MODE)
        return [(r["id"], r["org_id"]) for r in await conn.fetch(_DUE, now, limit)]


async def _claim(mail_id: UUID, org_id: UUID | None) -> Claim | None:
    now = clock.now()
    row = await _on_row(org_id, _CLAIM, mail_id, now + LEASE, now)
    if row is None:
        return None  # another worker has it, or it was cancelled meanwhile
    limit = row["attempt_limit"] or get_settings().mail_max_attempts
    return Claim(row["id"], org_id, row["kind"], row["ref_id"], row["recipient"], row["subject"], row["payload"], row["attempts"], limit)


async def _record(claim: Claim, error: mail.MailError | None) -> None:
    now = clock.now()
    if error is None:
        sql, args, after = _SENT, (now,), _AFTER_SENT.get(claim.kind)
        after_args: tuple = (claim.ref_id, now)
    else:
        dead = error.permanent or claim.last()
        status, run_after = ("dead", now) if dead else ("queued", now + backoff(claim.attempt))
        # A person's dead letter can't be retried by anyone: its links go now.
        sql, args = _AGAIN, (status, run_after, error.reason, dead and claim.org_id is None)
        after, after_args = (_AFTER_DEAD.get(claim.kind) if dead else None), (claim.ref_id, error.reason)
    then = (after, after_args) if after and claim.ref_id else None
    if await _on_row(claim.org_id, sql, claim.id, claim.attempt, *args, then=then) is None:
        log.info("mail %s: lease lost before its outcome was recorded", claim.id)


async def deliver(claim: Claim) -> bool:
    """Send one claimed mail and record the outcome; True if it went out."""
    try:
        error = await _send(claim)
    except NothingToSend:
        await _on_row(claim.org_id, _AGAIN, claim.id, claim.attempt, "cancelled", clock.now(), None, True)
        log.info("mail %s (%s): nothing to send", claim.id, claim.kind)
        return False
    if error is None:
        log.info("mail %s (%s) delivered on attempt %d", claim.id, claim.kind, claim.attempt)
    elif error.permanent or claim.last():
        log.warning("mail %s (%s) not delivered, given up after attempt %d: %s", claim.id, claim.kind, claim.attempt, error.reason)
    else:
        log.warning("mail %s (%s) attempt %d failed, will retry: %s", claim.id, claim.kind, claim.attempt, error.reason)
    await _record(claim, error)
    return error is None


class NothingToSend(Exception):
    """A composed mail turned out to have no message (the address has no account)."""


async def _send(claim: Claim) -> mail.MailError | None:
    if claim.attempt > claim.limit:  # its senders kept dying mid-send (leases ran out): no more tries
        return mail.MailError(f"the mail could not be handed over in {claim.attempt - 1} attempts", permanent=True)
    try:
        body = _open(claim.payload, claim.id)
    except (InvalidTag, ValueError):
        return mail.MailError("the queued message could not be opened (was SECRET_KEY changed?)", permanent=True)
    try:
        if "compose" in body:
            composed = await _COMPOSERS[claim.kind](claim.recipient, body["compose"])
            if composed is None:
                raise NothingToSend()
            message = composed
        else:
            message = mail.Mail(to=claim.recipient, subject=claim.subject, text=body["text"], html=body["html"], kind=claim.kind, link=body["link"])
        # Well inside the lease: aiosmtplib's timeout is per step, so a slow server could
        # otherwise outlast it, and a second worker would send the same mail meanwhile.
        await asyncio.wait_for(mail.send(message, message_id=f"{claim.id}"), timeout=SEND_TIMEOUT.total_seconds())
    except mail.MailError as exc:
        return exc
    except NothingToSend:
        raise
    except asyncio.TimeoutError:
        return mail.MailError("the mail server took too long to accept the message")
    except Exception:  # a bug must not leave the row "sending" until its lease runs out, forever
        log.exception("mail %s: unexpected error while sending", claim.id)
        return mail.MailError("an unexpected error occurred while sending")
    return None


async def run_once(limit: int = 20) -> int:
    """Deliver the mail due now (up to ``limit``); returns how many rows were handled."""
    handled = 0
    for mail_id, org_id in await _due(clock.now(), limit):
        claim = await _claim(mail_id, org_id)
        if claim is not None:
            await deliver(claim)
            handled += 1
    return handled


async def drain(max_rounds: int = 100) -> None:
    """Deliver everything that is due, until nothing is (tests; a one-off ``portal`` command)."""
    for _ in range(max_rounds):
        if await run_once(100) == 0:
            return


async def purge(now: datetime | None = None) -> int:
    """Delete finished mail older than ``KEEP_FINISHED``; returns how many rows went."""
    before = (now or clock.now()) - KEEP_FINISHED
    async with db.transaction() as conn:
        await conn.execute(WORKER_MODE)
        purged = 0
        for sql in _PURGE:
            purged += int((await conn.execute(sql, before)).split()[-1])
    return purged


class MailWorker(PollingWorker):
    """The delivery loop every app process runs (started in the lifespan)."""

    name = "mail-worker"

    def __init__(self, *, poll_interval: float = 1.0, purge_every: float = 3600.0):
        super().__init__(poll_interval=poll_interval, purge_every=purge_every)

    async def work_once(self) -> bool:
        return await run_once() > 0

    async def purge(self) -> None:
        await purge()
