"""Writing audit events — always in the transaction of the change they describe.

The table is append-only for the application role (no UPDATE or DELETE grants).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from portal.audit.actions import Action
from portal.tenancy.context import OrgContext
from portal.tenancy.scope import TenantScope

# What an event is about: (type, id, label), e.g. ("agent", agent_id, "Nightly report").
Target = tuple[str, Any, str]

_INSERT = """
INSERT INTO audit_event
    (org_id, actor_id, actor_email, action, target_type, target_id, target_label, before, after, ip, actor_token_id, actor_label)
VALUES ({org}, $1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11)
"""


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


async def record_as(
    scope: TenantScope,
    *,
    actor_id: UUID | None,
    actor_email: str | None,
    ip: str,
    action: Action,
    target: Target | None = None,
    before: Any = None,
    after: Any = None,
    actor_token_id: UUID | None = None,
    actor_label: str | None = None,
) -> None:
    """Record ``action`` in ``scope``'s org by the given actor (None: the system, e.g. the export
    worker); a program's call also names its token (``actor_token_id``, ``actor_label``)."""
    target_type, target_id, target_label = target if target else (None, None, None)
    await scope.execute(
        _INSERT,
        actor_id,
        actor_email,
        str(action),
        target_type,
        str(target_id) if target_id is not None else None,
        (target_label or "")[:320] or None,
        _json(before),
        _json(after),
        ip[:64] if ip else None,
        actor_token_id,
        actor_label[:200] if actor_label else None,
    )


async def record(ctx: OrgContext, action: Action, **change: Any) -> None:
    """Record ``action`` by the request's actor in the request's org; ``change`` is ``record_as``'s
    ``target``, ``before`` and ``after``."""
    await record_as(
        ctx.scope, actor_id=ctx.user_id, actor_email=ctx.user_email, ip=ctx.ip, action=action,
        actor_token_id=ctx.token_id, actor_label=ctx.actor_label, **change,
    )
