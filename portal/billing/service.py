"""Billing settings per org. The seat limit is what invitations are checked against; it can't go
below the number of people already in the org."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from portal import emails
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.resources.common import FormErrors
from portal.tenancy.context import OrgContext


@dataclass(frozen=True)
class Plan:
    label: str
    summary: str


PLANS: dict[str, Plan] = {
    "free": Plan("Free", "For trying Praesidia with a small team."),
    "team": Plan("Team", "For teams running agents in production."),
    "enterprise": Plan("Enterprise", "Custom terms, invoicing and support."),
}
SEATS_MAX = 100_000
SPEND_CAP_MAX_CENTS = 100_000_000_00  # $100M: beyond any real monthly cap, far inside bigint
_MONEY_RE = re.compile(r"^\d+(\.\d{1,2})?$")
_DEFAULTS = {"plan": "free", "billing_email": None, "seat_limit": 25, "spend_cap_cents": None}


def format_cents(cents: int | None) -> str:
    if cents is None:
        return ""
    return f"{cents // 100}.{cents % 100:02d}" if cents % 100 else str(cents // 100)


async def _settings(ctx: OrgContext, *, lock: bool = False) -> dict[str, Any]:
    row = await ctx.scope.fetchrow(
        "SELECT plan, billing_email, seat_limit, spend_cap_cents, updated_at FROM billing_settings WHERE org_id = {org}"
        + (" FOR UPDATE" if lock else "")
    )
    members = await ctx.scope.fetchval("SELECT count(*) FROM membership WHERE org_id = {org}")
    values = {k: row[k] for k in _DEFAULTS} if row else dict(_DEFAULTS)
    return {**values, "updated_at": row["updated_at"] if row else None, "members": members}


async def billing_page(ctx: OrgContext) -> dict[str, Any]:
    settings = await _settings(ctx)
    form = {
        "plan": settings["plan"],
        "billing_email": settings["billing_email"] or "",
        "seat_limit": str(settings["seat_limit"]),
        "spend_cap": format_cents(settings["spend_cap_cents"]),
    }
    return {"settings": settings, "form": form}


def _parse_cents(raw: str) -> int:
    cleaned = raw.replace(",", "").replace("$", "").replace(" ", "")
    if not _MONEY_RE.match(cleaned):
        raise ValueError
    cents = int((Decimal(cleaned) * 100).to_integral_value())
    if cents > SPEND_CAP_MAX_CENTS:
        raise ValueError
    return cents


def validate(form: dict[str, str], members: int) -> dict[str, Any]:
    errors = FormErrors()
    plan = str(form.get("plan", "")).strip()
    if plan not in PLANS:
        errors["plan"] = "Choose Free, Team or Enterprise."
    email: str | None = None
    if raw_email := str(form.get("billing_email", "")).strip():
        try:
            email = emails.normalize(raw_email)
        except ValueError:
            errors["billing_email"] = "Enter an email address like billing@example.com, or leave it empty."
    seats: int | None = None
    raw_seats = str(form.get("seat_limit", "")).strip()
    try:
        seats = int(raw_seats) if len(raw_seats) <= 7 else None
    except ValueError:
        seats = None
    if seats is None or not 1 <= seats <= SEATS_MAX:
        errors["seat_limit"] = f"Enter a whole number of seats from 1 to {SEATS_MAX:,}."
    elif seats < members:
        errors["seat_limit"] = (
            f"The organization already has {members} member{'s' if members != 1 else ''}: "
            f"the seat limit can't be lower. Remove members first to reduce it."
        )
    cap: int | None = None
    raw_cap = str(form.get("spend_cap", "")).strip()
    if raw_cap:
        try:
            cap = _parse_cents(raw_cap)
        except (ValueError, InvalidOperation):
            errors["spend_cap"] = "Enter an amount in US dollars like 2500 or 2500.50, or leave it empty for no cap."
    errors.raise_if_any()
    return {"plan": plan, "billing_email": email, "seat_limit": seats, "spend_cap_cents": cap}


async def update_billing(ctx: OrgContext, form: dict[str, str]) -> bool:
    """Save the billing form; False if nothing changed. One ``billing.updated`` event with the
    changed fields before and after."""
    current = await _settings(ctx, lock=True)
    values = validate(form, current["members"])
    before = {k: current[k] for k in values if current[k] != values[k]}
    after = {k: values[k] for k in before}
    if not after:
        return False
    await ctx.scope.execute(
        """INSERT INTO billing_settings (org_id, plan, billing_email, seat_limit, spend_cap_cents, updated_at)
           VALUES ({org}, $1, $2, $3, $4, now())
           ON CONFLICT (org_id) DO UPDATE SET plan = EXCLUDED.plan, billing_email = EXCLUDED.billing_email,
               seat_limit = EXCLUDED.seat_limit, spend_cap_cents = EXCLUDED.spend_cap_cents, updated_at = now()""",
        values["plan"], values["billing_email"], values["seat_limit"], values["spend_cap_cents"],
    )
    await audit.record(ctx, Action.BILLING_UPDATED, target=("billing_settings", ctx.org.id, ctx.org.name), before=before, after=after)
    return True

