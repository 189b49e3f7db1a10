"""Reading the audit trail: the filtered, keyset-paginated log, its CSV export, and the access report.

The log is read newest first by ``(created_at, id)``; a page continues from the last row it showed
(a keyset cursor), so page 1,000 costs what page 1 costs. Each filter has an index that starts with
``org_id`` (``audit_event_org_created``, ``_org_action``, ``_org_actor``), and the actor filter is
resolved to an id first so it uses the actor index.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, AsyncIterator, Mapping
from urllib.parse import urlencode
from uuid import UUID

import asyncpg

from portal import clock, emails
from portal.audit.actions import KNOWN_ACTIONS, Action
from portal.audit.redact import in_audit_event
from portal.db import engine as db
from portal.db import registry
from portal.errors import Invalid
from portal.params import decode_cursor, encode_cursor, search_text
from portal.tenancy.context import OrgContext, org_transaction
from portal.tenancy.permissions import ROLE_LABELS, Role

PAGE_SIZE = 50
CSV_CHUNK = 1_000
_ACTION_RE = re.compile(r"^[a-z0-9_.\-]{1,64}$")

# ``KNOWN_ACTIONS`` (every ``Action``) are offered as suggestions in the filter; any action can be typed.


# -- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    date_from: str = ""
    date_to: str = ""

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    def query(self) -> dict[str, str]:
        """As query-string parameters (for links that keep the filters)."""
        return {k: v for k, v in {"actor": self.actor, "action": self.action, "from": self.date_from, "to": self.date_to}.items() if v}


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def parse_filters(params: Mapping[str, str]) -> AuditFilters:
    """Filters from the query string; ``Invalid`` with a message per field that makes no sense."""
    errors: dict[str, str] = {}
    actor = emails.canonical(search_text(params.get("actor")))[:320]  # no control characters (NUL)
    action = str(params.get("action") or "").strip().lower()
    raw_from, raw_to = (str(params.get(k) or "").strip()[:10] for k in ("from", "to"))
    if action and not _ACTION_RE.match(action):
        errors["action"] = "Actions look like “agent.created”: lowercase letters, digits, dots and underscores."
    if raw_from and _date(raw_from) is None:
        errors["from"] = "Use a date like 2026-01-31."
    if raw_to and _date(raw_to) is None:
        errors["to"] = "Use a date like 2026-01-31."
    if not errors and raw_from and raw_to and _date(raw_from) > _date(raw_to):  # type: ignore[operator]
        errors["to"] = "The end date is before the start date."
    filters = AuditFilters(actor, action if "action" not in errors else "", raw_from, raw_to)
    if errors:
        raise Invalid("Please correct the filters.", field_errors=errors)
    return filters


# -- the log ------------------------------------------------------------------------------------

_EVENTS = """SELECT e.id, e.created_at, e.actor_id, e.actor_email, e.action, e.target_type, e.target_id,
                    e.target_label, e.before, e.after, e.ip, e.actor_token_id, e.actor_label
             FROM audit_event e WHERE e.org_id = {org}"""


async def _actor_id(email: str) -> UUID | None:
    """The account behind an email (a global table: an id, nothing of another org)."""
    return await db.current_connection().fetchval("SELECT id FROM app_user WHERE email = $1", email)


async def _conditions(filters: AuditFilters, args: list[Any]) -> str:
    """SQL conditions (after ``org_id = {org}``) for the filters, their values appended to ``args``."""
    sql = ""
    if filters.actor:
        actor_id = await _actor_id(filters.actor)
        if actor_id is not None:
            args.append(actor_id)
            sql += f" AND e.actor_id = ${len(args)}"
        else:  # no such account (any more): match the email recorded with the event
            args.append(filters.actor)
            sql += f" AND e.actor_email = ${len(args)}"
    if filters.action:
        args.append(filters.action)
        sql += f" AND e.action = ${len(args)}"
    if d := _date(filters.date_from):
        args.append(datetime.combine(d, time.min, timezone.utc))
        sql += f" AND e.created_at >= ${len(args)}"
    if (d := _date(filters.date_to)) and d < date.max:  # up to 9999-12-31: no end (the day after overflows)
        args.append(datetime.combine(d + timedelta(days=1), time.min, timezone.utc))
        sql += f" AND e.created_at < ${len(args)}"
    return sql


async def fetch_events(
    ctx: OrgContext,
    filters: AuditFilters,
    *,
    after: tuple[datetime, UUID] | None = None,
    before: tuple[datetime, UUID] | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[asyncpg.Record], bool]:
    """Up to ``limit`` events newest first: older than ``after``, or (going back) newer than
    ``before``. Also says whether there are more in the direction of travel."""
    args: list[Any] = []
    sql = await _conditions(filters, args)
    if before is not None:
        args += [before[0], before[1]]
        sql += f" AND (e.created_at, e.id) > (${len(args) - 1}, ${len(args)}) ORDER BY e.created_at, e.id"
    else:
        if after is not None:
            args += [after[0], after[1]]
            sql += f" AND (e.created_at, e.id) < (${len(args) - 1}, ${len(args)})"
        sql += " ORDER BY e.created_at DESC, e.id DESC"
    args.append(limit + 1)
    sql += f" LIMIT ${len(args)}"
    rows = await ctx.scope.fetch(_EVENTS + sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    return rows, more


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _show(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 300 else text[:299] + "…"


def changes_of(event: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field, before, after) rows for display; whole values when before/after aren't objects."""
    before = in_audit_event(event["action"], _json(event["before"]))
    after = in_audit_event(event["action"], _json(event["after"]))
    if before is not None and not isinstance(before, dict) or after is not None and not isinstance(after, dict):
        return [("value", "" if before is None else _show(before), "" if after is None else _show(after))]
    before, after = before or {}, after or {}
    keys = list(dict.fromkeys([*before, *after]))
    return [(k, _show(before[k]) if k in before else "", _show(after[k]) if k in after else "") for k in keys]


async def audit_page(
    ctx: OrgContext, filters: AuditFilters, *, after_raw: str | None, before_raw: str | None
) -> dict[str, Any]:
    # A cursor is the (created_at, id) of the row a page continues from; malformed ones start from the newest.
    after, before = decode_cursor(after_raw, datetime, UUID), decode_cursor(before_raw, datetime, UUID)
    if after and before:
        before = None
    rows, more = await fetch_events(ctx, filters, after=after, before=before)
    events = [{**dict(r), "changes": changes_of(r)} for r in rows]
    newer = older = None
    if events:
        if (before is not None and more) or (before is None and after is not None):
            newer = encode_cursor(events[0]["created_at"], events[0]["id"])
        if (before is None and more) or before is not None:
            older = encode_cursor(events[-1]["created_at"], events[-1]["id"])
    query = filters.query()
    return {
        "events": events,
        "filters": filters,
        "newer": urlencode({**query, "before": newer}) if newer else None,
        "older": urlencode({**query, "after": older}) if older else None,
        "paged": after is not None or before is not None,
        "known_actions": KNOWN_ACTIONS,
    }


# -- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "time_utc", "actor_email", "actor_id", "action", "target_type", "target_id", "target_label", "ip", "before", "after",
    "actor_token_id", "actor_label",
)
# A cell starting with one of these is a formula to spreadsheet software (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_json(action: str, value: Any) -> str | None:
    value = in_audit_event(action, _json(value))
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _csv_lines(rows: list[Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(row[col]) for col in row])
    return buffer.getvalue().encode()


async def audit_csv(ctx: OrgContext, filters: AuditFilters) -> AsyncIterator[bytes]:
    """The filtered log as CSV, newest first, in keyset chunks: memory stays at one chunk whatever
    the size of the log, and each chunk is read in a short transaction of its own and sent after
    it ends, so a slow reader holds no pooled connection."""
    yield _csv_lines([dict(zip(CSV_COLUMNS, CSV_COLUMNS))])
    cursor: tuple[datetime, UUID] | None = None
    while True:
        async with org_transaction(ctx) as current:
            rows, more = await fetch_events(current, filters, after=cursor, limit=CSV_CHUNK)
        if rows:
            yield _csv_lines(
                [
                    {
                        "time_utc": r["created_at"], "actor_email": r["actor_email"], "actor_id": r["actor_id"],
                        "action": r["action"], "target_type": r["target_type"], "target_id": r["target_id"],
                        "target_label": r["target_label"], "ip": r["ip"],
                        "before": _csv_json(r["action"], r["before"]), "after": _csv_json(r["action"], r["after"]),
                        "actor_token_id": r["actor_token_id"], "actor_label": r["actor_label"],
                    }
                    for r in rows
                ]
            )
        if not more:
            return
        cursor = (rows[-1]["created_at"], rows[-1]["id"])


def csv_filename(slug: str, what: str) -> str:
    return f"{slug}-{what}-{clock.now().astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.csv"


# -- access report ------------------------------------------------------------------------------

# How each role-granting event names the membership it is about.
_GRANTS = """SELECT e.action, e.actor_id, e.actor_email, e.created_at, e.target_id, e.before, e.after
             FROM audit_event e WHERE e.org_id = {org}
               AND e.action = ANY($1::text[]) AND e.created_at >= $2
             ORDER BY e.created_at, e.id"""
_GRANT_ACTIONS = [Action.ORG_CREATED, Action.MEMBER_JOINED, Action.MEMBER_ROLE_CHANGED, Action.ORG_OWNERSHIP_TRANSFERRED]
_INVITERS = """SELECT e.target_id, e.actor_email FROM audit_event e WHERE e.org_id = {org}
                 AND e.action = ANY($2::text[]) AND e.target_id = ANY($1::text[])"""
_INVITE_ACTIONS = [Action.INVITE_CREATED, Action.INVITE_RESENT]
_MEMBERS = """SELECT m.id, m.user_id, m.role, m.custom_role_id, r.name AS role_name, m.created_at, u.name, u.email
              FROM membership m JOIN app_user u ON u.id = m.user_id
              LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
              WHERE m.org_id = {org}
              ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'billing_admin' THEN 1
                                   WHEN 'compliance_officer' THEN 2 WHEN 'custom' THEN 3 ELSE 4 END,
                       lower(r.name), lower(u.name), u.email"""
_PENDING_INVITES = """SELECT i.email, i.role, r.name AS role_name, i.created_at, i.expires_at, u.email AS inviter_email
                      FROM invite i LEFT JOIN app_user u ON u.id = i.invited_by
                      LEFT JOIN org_role r ON r.org_id = {org} AND r.id = i.custom_role_id
                      WHERE i.org_id = {org} AND i.accepted_at IS NULL AND i.revoked_at IS NULL
                        AND i.superseded_at IS NULL
                      ORDER BY i.created_at DESC"""


# Programs that can act: live API tokens (with their role) and agents' tokens.
_LIVE_TOKENS = """SELECT t.id, t.name, t.prefix, t.role, r.name AS role_name, a.name AS agent_name,
                         t.created_by_email, t.created_at, t.expires_at, t.last_used_at
                  FROM api_token t
                  LEFT JOIN org_role r ON r.org_id = {org} AND r.id = t.custom_role_id
                  LEFT JOIN agent a ON a.org_id = {org} AND a.id = t.agent_id
                  WHERE t.org_id = {org} AND t.revoked_at IS NULL AND t.expires_at > now()
                  ORDER BY t.agent_id IS NOT NULL, t.created_at, t.id"""


_TOKEN_KINDS = {"agent": "agent token", "scim": "SCIM token"}


def _token_row(t: Mapping[str, Any]) -> dict[str, Any]:
    label = {"agent": f"Agent “{t['agent_name']}”", "scim": "SCIM provisioning"}.get(t["role"]) or role_label(t)
    return {**dict(t), "kind": _TOKEN_KINDS.get(t["role"], "API token"), "role_label": label}


@dataclass
class Grant:
    role: str | None  # the role's key: a built-in role's name, or a custom role's id
    at: datetime
    by: str | None
    how: str


def _key(fields: Mapping[str, Any]) -> str | None:
    """The role an event's ``after`` (or a membership row) names: a custom role by its id."""
    custom = fields.get("custom_role_id")
    return str(custom) if custom else fields.get("role")


def role_label(row: Mapping[str, Any]) -> str:
    return row["role_name"] or ROLE_LABELS[Role.CUSTOM] if row["role"] == Role.CUSTOM else ROLE_LABELS.get(Role(row["role"]), row["role"])


def _grant_of(event: Mapping[str, Any], member: Mapping[str, Any], inviters: dict[str, str]) -> Grant | None:
    """What ``event`` says about ``member``'s role, if anything."""
    action, target = event["action"], event["target_id"]
    before, after = _json(event["before"]) or {}, _json(event["after"]) or {}
    if action == Action.ORG_CREATED and event["actor_id"] == member["user_id"]:
        return Grant(Role.OWNER, event["created_at"], event["actor_email"], "created the organization")
    if action == Action.MEMBER_JOINED and target in (str(member["user_id"]), str(member["id"])):
        by, how = event["actor_email"], "added"
        invite_id = after.get("invite_id")
        if invite_id:
            by, how = inviters.get(str(invite_id)), "accepted an invite"
        return Grant(_key(after), event["created_at"], by, how)
    if action == Action.MEMBER_ROLE_CHANGED and target == str(member["id"]):
        return Grant(_key(after), event["created_at"], event["actor_email"], "role changed")
    if action == Action.ORG_OWNERSHIP_TRANSFERRED:
        if target == str(member["id"]):
            return Grant(Role.OWNER, event["created_at"], event["actor_email"], "ownership transferred to them")
        if before.get("owner_membership_id") == str(member["id"]):
            return Grant(after.get("previous_owner_role", Role.MEMBER), event["created_at"], event["actor_email"], "transferred ownership")
    return None


async def _pending_invites(ctx: OrgContext) -> list[asyncpg.Record] | None:
    """Open invites, or None where invites don't exist (yet) in this deployment."""
    if "invite" not in registry.TENANT_TABLES:
        return None
    try:
        async with db.current_connection().transaction():  # a savepoint: a missing table can't spoil the request
            return await ctx.scope.fetch(_PENDING_INVITES)
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        return None


async def access_report(ctx: OrgContext) -> dict[str, Any]:
    """Who holds which role, since when, granted by whom (from the audit trail), and open invites.

    A fixed number of statements: members, the role-granting events since the oldest membership,
    the inviters of the invites those events mention, and pending invites.
    """
    members = await ctx.scope.fetch(_MEMBERS)
    grants: dict[Any, Grant] = {}
    if members:
        oldest = min(m["created_at"] for m in members) - timedelta(seconds=1)
        events = await ctx.scope.fetch(_GRANTS, _GRANT_ACTIONS, oldest)
        invite_ids = sorted({str((_json(e["after"]) or {}).get("invite_id")) for e in events if e["action"] == Action.MEMBER_JOINED} - {"None"})
        inviters = {r["target_id"]: r["actor_email"] for r in await ctx.scope.fetch(_INVITERS, invite_ids, _INVITE_ACTIONS)} if invite_ids else {}
        by_key: dict[str, list[Mapping[str, Any]]] = {}
        for e in events:  # index events by every id they may concern, so each member looks at few
            keys = {e["target_id"], str(e["actor_id"]), str((_json(e["before"]) or {}).get("owner_membership_id"))}
            for key in keys - {None, "None"}:
                by_key.setdefault(key, []).append(e)
        for m in members:
            candidates = by_key.get(str(m["id"]), []) + by_key.get(str(m["user_id"]), [])
            latest: Grant | None = None
            for e in sorted(candidates, key=lambda e: e["created_at"]):
                if e["created_at"] < m["created_at"] - timedelta(seconds=1):
                    continue  # about an earlier membership of the same person
                grant = _grant_of(e, m, inviters)
                if grant is not None and (grant.role is None or grant.role == _key(m)):
                    latest = grant
            grants[m["id"]] = latest or Grant(_key(m), m["created_at"], None, "")
    now = clock.now()
    rows = [
        {
            "name": m["name"], "email": m["email"], "role": m["role"], "role_label": role_label(m),
            "member_since": m["created_at"], "role_since": grants[m["id"]].at, "granted_by": grants[m["id"]].by,
            "how": grants[m["id"]].how,
        }
        for m in members
    ]
    invites = await _pending_invites(ctx)
    pending = [
        {**dict(i), "role_label": role_label(i), "expired": i["expires_at"] <= now}
        for i in invites or []
    ]
    tokens = [_token_row(t) for t in await ctx.scope.fetch(_LIVE_TOKENS)]
    return {"members": rows, "invites": pending, "invites_available": invites is not None, "tokens": tokens, "generated_at": now}


def _csv_role(row: Mapping[str, Any]) -> str:
    """A built-in role by its name; a custom role as ``custom: <its name>``; an agent's token as
    ``agent: <its name>``."""
    if row["role"] == "agent":
        return f"agent: {row['agent_name']}"
    if row["role"] == "scim":
        return "scim"
    return f"custom: {row['role_label']}" if row["role"] == Role.CUSTOM else row["role"]


ACCESS_COLUMNS = ("kind", "name", "email", "role", "member_since_utc", "role_since_utc", "granted_by", "how", "expires_utc")


async def access_csv(report: dict[str, Any]) -> AsyncIterator[bytes]:
    """The access report (read beforehand, in one short transaction) as CSV."""
    yield _csv_lines([dict(zip(ACCESS_COLUMNS, ACCESS_COLUMNS))])
    yield _csv_lines(
        [
            {
                "kind": "member", "name": r["name"], "email": r["email"], "role": _csv_role(r), "member_since_utc": r["member_since"],
                "role_since_utc": r["role_since"], "granted_by": r["granted_by"], "how": r["how"], "expires_utc": None,
            }
            for r in report["members"]
        ]
    )
    yield _csv_lines(
        [
            {
                "kind": "invite (expired)" if i["expired"] else "invite (pending)", "name": None, "email": i["email"],
                "role": _csv_role(i), "member_since_utc": None, "role_since_utc": i["created_at"], "granted_by": i["inviter_email"],
                "how": "invited", "expires_utc": i["expires_at"],
            }
            for i in report["invites"]
        ]
    )
    yield _csv_lines(
        [
            {
                "kind": t["kind"], "name": t["name"], "email": None, "role": _csv_role(t), "member_since_utc": None,
                "role_since_utc": t["created_at"], "granted_by": t["created_by_email"], "how": f"token {t['prefix']}…",
                "expires_utc": t["expires_at"],
            }
            for t in report["tokens"]
        ]
    )
