"""Per-token rate limit, concurrency and idempotent creation for the JSON API (SPEC §11).

**Rate.** ``API_RATE`` calls per token and minute (default 600), counted in PostgreSQL
(``api_rate``) by one autocommitted upsert *before* the request's transaction opens: the counter
row is locked for one statement, never for a request, and no connection is held while another is
awaited. Counted by the hash of whatever token was presented, so made-up tokens count too. Over
the limit: 429 with ``Retry-After`` (the seconds left in the minute).

**Idempotency.** A creating ``POST`` sent with ``Idempotency-Key`` stores its response
(``api_idempotency``) in the transaction that created the thing. A retry with the same key, token
and body gets the same response again and creates nothing; with another body, a 409. Unsafe
calls of one org queue on the org row (``enter_token``), so concurrent retries find the first
one's record once it commits. A failed call stores nothing (its transaction rolls back), so it
can be retried with the same key. A record counts for ``KEEP_HOURS`` (24); older ones are ignored,
overwritten when their key comes back, and swept now and then.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

from litestar import Request, Response

from portal import clock
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Conflict, Invalid, TooManyRequests
from portal.tenancy.context import OrgContext

KEY_MAX = 200
KEEP_HOURS = 24
# One autocommitted statement: count the call, and note the token's last use (at most once a
# minute; nothing for a token that doesn't exist).
_RATE = """WITH hit AS (
               INSERT INTO api_rate (bucket, minute, hits) VALUES ($1, date_trunc('minute', $2::timestamptz), 1)
               ON CONFLICT (bucket) DO UPDATE SET hits = api_rate.hits + 1 RETURNING hits)
           SELECT hit.hits, touch_api_token($3) FROM hit"""


async def count_call(token_hash: str) -> None:
    """One call of the token with hash ``token_hash``; ``TooManyRequests`` past ``API_RATE``."""
    now = clock.now()
    minute = now.replace(second=0, microsecond=0)
    async with db.connection() as conn:
        hits = await conn.fetchval(_RATE, f"{token_hash}@{minute:%Y%m%d%H%M}", now, token_hash)
        if random.random() < 0.01:  # minutes gone by
            await conn.execute("DELETE FROM api_rate WHERE minute < $1", minute)
    limit = get_settings().api_rate
    if hits > limit:
        left = 60 - (now - minute).total_seconds()
        raise TooManyRequests(f"This token made more than {limit} calls this minute. Slow down.", retry_after=math.ceil(left))


def _request_hash(request: Request, body: bytes) -> str:
    return hashlib.sha256(b"%s %s\n" % (request.method.encode(), request.url.path.encode()) + body).hexdigest()


def _key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > KEY_MAX:  # the route's header parameter says so first (400)
        raise Invalid(f"An Idempotency-Key has 1 to {KEY_MAX} characters.", field_errors={"Idempotency-Key": "1 to 200 characters"})
    return key


async def replay(org: OrgContext, request: Request) -> Response | None:
    """The stored response of an earlier call with this request's ``Idempotency-Key``, if any."""
    key = _key(request)
    if key is None or org.token_id is None:
        return None
    row = await org.scope.fetchrow(
        f"""SELECT request_hash, status, headers, body FROM api_idempotency
            WHERE org_id = {{org}} AND token_id = $1 AND key = $2 AND created_at > now() - interval '{KEEP_HOURS} hours'""",
        org.token_id, key,
    )
    if row is None:
        return None
    if row["request_hash"] != _request_hash(request, await request.body()):
        # A conflict with what the key is already bound to (the IETF draft suggests 422; a 409
        # says better that the request itself is fine, only not with this key).
        raise Conflict("This Idempotency-Key was already used with another request. Use a new key for a new request.")
    headers = {**json.loads(row["headers"]), "Idempotent-Replayed": "true"}
    return Response(bytes(row["body"]), status_code=row["status"], media_type="application/json", headers=headers)


async def remember(org: OrgContext, request: Request, status: int, body: bytes, headers: dict[str, str]) -> None:
    """Store this response for retries with the same ``Idempotency-Key`` (none: nothing to do)."""
    key = _key(request)
    if key is None or org.token_id is None:
        return
    await org.scope.execute(
        f"""INSERT INTO api_idempotency (org_id, token_id, key, request_hash, status, headers, body)
           VALUES ({{org}}, $1, $2, $3, $4, $5::jsonb, $6)
           ON CONFLICT (org_id, token_id, key) DO UPDATE  -- a record past its day, not yet swept: the key is free again
           SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, headers = EXCLUDED.headers,
               body = EXCLUDED.body, created_at = now()
           WHERE api_idempotency.created_at <= now() - interval '{KEEP_HOURS} hours'""",
        org.token_id, key, _request_hash(request, await request.body()), status, json.dumps(headers), body,
    )
    if random.random() < 0.05:
        await org.scope.execute(
            f"DELETE FROM api_idempotency WHERE org_id = {{org}} AND created_at < now() - interval '{KEEP_HOURS} hours'"
        )

