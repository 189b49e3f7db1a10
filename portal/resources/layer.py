"""The resource layer: an org resource is declared once, and one generic service does the rest.

A ``Resource`` names its table, its fields (each with the validation of its form input), the
columns its pages show, the columns searched, the list order and the nouns of its messages. From
that one declaration the service below lists, searches, pages (by page number for the HTML pages,
by keyset cursor for programs), reads, locks, creates, updates, deletes and writes the audit
events with the before/after of the fields that changed; ``portal.resources.web`` builds the
pages and their named routes from the same declaration.

Everything goes through the org's ``TenantScope`` (``{org}`` in every statement), inside the
request's transaction. A resource module keeps only what is truly its own: a workflow's
definition and agent, a connection's encrypted secret, a team's members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping
from uuid import UUID

import asyncpg
from markupsafe import Markup

from portal import records
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.errors import Conflict, Invalid, NotFound
from portal.params import decode_cursor, encode_cursor, like_pattern
from portal.resources import common
from portal.resources.common import FormErrors
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.tenancy.scope import TenantScope

Form = Mapping[str, str]


class SQL(str):
    """A value for ``insert``'s ``extra`` written into the statement as SQL (e.g. ``now()``)."""


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One editable column: how its form input is read and checked, and how it is stored."""

    name: str
    read: Callable[[Form, FormErrors], Any]  # the form's value, checked; problems go into the errors
    cast: str = ""  # SQL cast of the parameter, e.g. "::jsonb"
    to_db: Callable[[Any], Any] = _same  # checked value → query parameter
    of_row: Callable[[Any], Any] = _same  # stored value → the value audit events and diffs compare
    on_create_only: bool = False  # e.g. a connection's kind: chosen once


# -- field readers shared by the resources ------------------------------------------------------


def name(noun: str) -> Field:
    return Field("name", lambda form, errors: common.name_field(form, errors, noun=noun))


DESCRIPTION = Field("description", common.description_field)


def choice(field_name: str, options: tuple[str, ...], message: str, default: str) -> Field:
    def read(form: Form, errors: FormErrors) -> str:
        value = str(form.get(field_name, default)).strip() or default
        if value not in options:
            errors[field_name] = message
        return value

    return Field(field_name, read)


def flag(field_name: str) -> Field:
    """A checkbox: on when sent as 1, on or true."""
    return Field(field_name, lambda form, errors: form.get(field_name, "") in ("1", "on", "true"))


@dataclass(frozen=True)
class State:
    """One of the two states of a ``Toggle``."""

    value: Any  # as stored
    posted: str  # as a form posts it
    word: str  # "active", "enabled": badges and messages
    css: str  # the badge's class: status-<css>
    leave: str  # the button that switches away from it: "Pause", "Disable"


@dataclass(frozen=True)
class Toggle:
    """A one-click switch between two states on list and detail pages (pause/resume an agent,
    enable/disable a workflow). ``field`` is the column, the form field and the URL's last segment."""

    field: str
    on: State
    off: State

    def state(self, row: Any) -> State:
        return self.on if row[self.field] == self.on.value else self.off

    def other(self, row: Any) -> State:
        return self.off if row[self.field] == self.on.value else self.on

    def parse(self, posted: str) -> Any:
        """The posted value as stored; None when it is neither state."""
        return next((s.value for s in (self.on, self.off) if s.posted == posted), None)

    @property
    def invalid(self) -> str:
        return f"Choose {self.on.word} or {self.off.word}."

    def message(self, row: Any) -> str:
        return f"“{row['name']}” is {self.state(row).word}."

    def badge(self, row: Any) -> Markup:
        """The state as a badge, for lists and detail pages."""
        state = self.state(row)
        return Markup('<span class="badge status-{}">{}</span>').format(state.css, state.word.capitalize())


@dataclass(frozen=True)
class Export:
    """How the resource appears in the org's export archive (``portal.exports``): one file, a
    record per row, each field declared once (``portal.records.Field``; ``t`` is the table)."""

    filename: str
    description: str
    fields: tuple[records.Field, ...]
    joins: str = ""  # adds columns, never rows
    requires: tuple[str, ...] | None = None  # the tenant tables read (default: the resource's own)


def export_fields(*own: records.Field, created_by: bool = True) -> tuple[records.Field, ...]:
    """A resource's exported record: its id and name, its own fields, who created it and when."""
    return (
        records.uid_field("id"),
        records.Field("name", records.STRING),
        *own,
        *((records.uid_field("created_by", records.nullable(records.ID)),) if created_by else ()),
        records.CREATED_AT,
        records.UPDATED_AT,
    )


EXPORTED_DESCRIPTION = records.Field("description", records.STRING)


@dataclass(frozen=True)
class Page:
    """One page of a list: the rows, and the pager that numbers them."""

    rows: list
    pager: common.Pager
    q: str


class Resource:
    """The declaration of one kind of org resource. Subclasses set the class attributes and
    override the hooks that are truly their own."""

    noun: ClassVar[str]  # "agent": the table, the audit target type and action prefix, row ids
    plural: ClassVar[str]  # "agents": URLs, route names, templates
    title: ClassVar[str]  # "Agent"
    title_plural: ClassVar[str]  # "Agents"
    intro: ClassVar[str] = ""  # the list page's one-line explanation
    search_hint: ClassVar[str] = "Name or description"  # the search box's placeholder
    form_autocomplete_off: ClassVar[bool] = False
    table: ClassVar[str] = ""  # the table, when not named like the noun
    alias: ClassVar[str]  # the table's alias in ``columns``
    columns: ClassVar[str]  # what a detail page shows
    list_columns: ClassVar[str | None] = None  # what a list shows, when lighter than ``columns``
    joins: ClassVar[str] = ""  # joined tables (each joined on org_id too)
    search: ClassVar[tuple[str, ...]] = ()  # columns matched by the search box (ILIKE, literal)
    fields: ClassVar[tuple[Field, ...]] = ()
    toggle: ClassVar[Toggle | None] = None
    export: ClassVar[Export]
    page_size: ClassVar[int] = common.PAGE_SIZE
    before_list: ClassVar[bool] = False  # the parts have a ``before_list`` macro (above the list)
    blocker_detail: ClassVar[str] = ""  # a parts macro the delete page shows under a blocker
    view_permission: ClassVar[Perm] = Perm.VIEW  # the list and detail pages
    manage_permission: ClassVar[Perm] = Perm.MANAGE_RESOURCES  # the forms, edits and deletes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.table = cls.table or cls.noun

    # -- derived names --------------------------------------------------------------------------
    @property
    def id_param(self) -> str:
        return f"{self.noun}_id"

    @property
    def taken(self) -> str:
        return f"Another {self.noun} in this organization already has this name."

    def action(self, verb: str) -> Action:
        return Action(f"{self.noun}.{verb}")

    def _from(self) -> str:
        return f"{self.table} {self.alias} {self.joins}".rstrip()

    # -- hooks ------------------------------------------------------------------------------------
    def audited(self, row: Any) -> dict[str, Any]:
        """The resource as audit events record it and edits compare it."""
        return {f.name: f.of_row(row[f.name]) for f in self.fields}

    def audited_on_delete(self, row: Any) -> dict[str, Any]:
        return self.audited(row)

    def match(self, q: str) -> tuple[str, list]:
        """The search condition for ``q`` (numbered from $1) and its parameters."""
        pattern = like_pattern(q)
        return "(" + " OR ".join(f"{col} ILIKE $1" for col in self.search) + ")", [pattern]

    async def check(self, ctx: OrgContext, values: dict[str, Any], errors: FormErrors, current: Any) -> None:
        """Checks that need the database or several fields (after each field read its own)."""

    def guard(self, ctx: OrgContext, row: Any) -> None:
        """Refuse (raise) when ``ctx`` may not change or delete this locked row at all."""

    def in_use(self, row: Any) -> str | None:
        """Why the row can't be deleted now (a Conflict), or None."""
        return None

    in_use_meanwhile: ClassVar[str] = ""  # a reference appeared between the check and the delete

    # -- what the pages need (plain data: ``portal.resources.web`` turns it into responses) -------
    # Sections of the detail page htmx swaps alone: (macro of the resource's parts, element id).
    sections: ClassVar[tuple[tuple[str, str], ...]] = ()
    form_fragment: ClassVar[str | None] = None  # a block of the new-item form htmx asks for alone
    form_fragment_target: ClassVar[str | None] = None  # … when the request targets this element id

    @property
    def created_message(self) -> str:
        return f"{self.title} created."

    def list_context(self) -> dict[str, Any]:
        return {}

    def form_defaults(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The new-item form's initial values (``query``: the page's query string)."""
        return {}

    def form_of(self, row: Any) -> dict[str, Any]:
        """The edit form's initial values."""
        return dict(row)

    def shown_form(self, form: dict[str, Any]) -> dict[str, Any]:
        """The form as it may be drawn back (a connection's secret never is)."""
        return form

    def resubmitted(self, form: dict[str, Any], row: Any) -> dict[str, Any]:
        """A refused edit form, drawn again."""
        return form

    async def form_context(self, ctx: OrgContext, form: dict[str, Any], row: Any) -> dict[str, Any]:
        return {}

    async def detail_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        return {}

    async def confirm_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        """What the delete page shows besides the row (e.g. who still holds a role)."""
        return {}

    def delete_blocker(self, row: Any) -> str | None:
        """Shown on the delete page instead of the button while the row can't be deleted."""
        return None

    def delete_consequence(self, row: Any) -> str:
        return "The audit log keeps a record of it."

    def delete_question(self, row: Any) -> str:
        """What a list row's delete button asks before deleting."""
        return f"Delete the {self.noun} “{row['name']}”? This can't be undone."

    # -- reading ----------------------------------------------------------------------------------
    async def page(self, scope: TenantScope, q: str, number: int) -> Page:
        """One numbered page of rows matching ``q``: two statements (count, rows)."""
        where, params = self.match(q) if q else ("TRUE", [])
        a = self.alias
        total = await scope.fetchval(f"SELECT count(*) FROM {self.table} {a} WHERE {a}.org_id = {{org}} AND {where}", *params)
        pager = common.pager(total, number, self.page_size)
        n = len(params)
        rows = await scope.fetch(
            f"""SELECT {self.list_columns or self.columns} FROM {self._from()}
                WHERE {a}.org_id = {{org}} AND {where}
                ORDER BY lower({a}.name), {a}.id LIMIT ${n + 1} OFFSET ${n + 2}""",
            *params, pager.size, pager.offset,
        )
        return Page(rows, pager, q)

    async def keyset(
        self, scope: TenantScope, *, after: str | None, limit: int, q: str = "", only: tuple[str, Any] | None = None
    ) -> tuple[list, str | None]:
        """Rows in name order after the cursor ``after``, and the cursor of the next page (None at
        the end). A malformed cursor starts from the beginning. One statement per page, however
        deep. Rows have the detail page's ``columns``: a program's list item is the item itself.
        ``only``: (column, value), the rows whose column holds the value (an agent's workflows)."""
        where, params = self.match(q) if q else ("TRUE", [])
        a = self.alias
        if only is not None:
            params = [*params, only[1]]
            where += f" AND {a}.{only[0]} = ${len(params)}"
        key = decode_cursor(after, str, UUID)
        n = len(params)
        if key is not None:
            where += f" AND (lower({a}.name), {a}.id) > (${n + 1}, ${n + 2})"
            params = [*params, *key]
        rows = await scope.fetch(
            f"""SELECT {self.columns} FROM {self._from()}
                WHERE {a}.org_id = {{org}} AND {where}
                ORDER BY lower({a}.name), {a}.id LIMIT ${len(params) + 1}""",
            *params, limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["name"].lower(), rows[-1]["id"]) if more else None

    async def get(self, scope: TenantScope, item_id: UUID, *, lock: bool = False) -> asyncpg.Record:
        """One row; with ``lock``, locked for the rest of the transaction (edits and deletes)."""
        a = self.alias
        row = await scope.fetchrow(
            f"SELECT {self.columns} FROM {self._from()} WHERE {a}.org_id = {{org}} AND {a}.id = $1"
            + (f" FOR UPDATE OF {a}" if lock else ""),
            item_id,
        )
        if row is None:
            raise NotFound()
        return row

    # -- writing ----------------------------------------------------------------------------------
    async def validate(self, ctx: OrgContext, form: Form, current: Any = None) -> dict[str, Any]:
        """The form's values, each field read and checked; all problems raised together."""
        errors = FormErrors()
        values = {f.name: f.read(form, errors) for f in self.fields if current is None or not f.on_create_only}
        await self.check(ctx, values, errors, current)
        errors.raise_if_any()
        return values

    def _params(self, values: dict[str, Any]) -> tuple[list[str], list[str], list[Any]]:
        names, casts, params = [], [], []
        for f in self.fields:
            if f.name in values:
                names.append(f.name)
                casts.append(f.cast)
                params.append(f.to_db(values[f.name]))
        return names, casts, params

    async def insert(self, ctx: OrgContext, values: dict[str, Any], *, extra: dict[str, Any] | None = None) -> UUID:
        """Insert a row of this org (``extra``: columns that are not form fields, e.g. a given id)."""
        names, casts, params = self._params(values)
        slots = [f"${i + 1}{cast}" for i, cast in enumerate(casts)]
        for column, value in {**(extra or {}), "created_by": ctx.user_id}.items():
            names.append(column)
            if isinstance(value, SQL):
                slots.append(value)
            else:
                params.append(value)
                slots.append(f"${len(params)}")
        async with common.unique_name(self.taken):
            return await ctx.scope.fetchval(
                f"INSERT INTO {self.table} (org_id, {', '.join(names)}) VALUES ({{org}}, {', '.join(slots)}) RETURNING id",
                *params,
            )

    async def create(self, ctx: OrgContext, form: Form) -> UUID:
        values = await self.validate(ctx, form)
        item_id = await self.insert(ctx, values)
        await audit.record(ctx, self.action("created"), target=(self.noun, item_id, values["name"]), after=values)
        return item_id

    async def apply(self, ctx: OrgContext, current: Any, values: dict[str, Any]) -> bool:
        """Save ``values`` over the locked row ``current``: only what changed is audited; False
        (and nothing written) when nothing changed."""
        before, after = common.changes(self.audited(current), values)
        if not after:
            return False
        names, casts, params = self._params(values)
        sets = ", ".join(f"{col} = ${i + 2}{cast}" for i, (col, cast) in enumerate(zip(names, casts)))
        async with common.unique_name(self.taken):
            await ctx.scope.execute(
                f"UPDATE {self.table} SET {sets}, updated_at = now() WHERE org_id = {{org}} AND id = $1", current["id"], *params
            )
        label = values.get("name", current["name"])
        await audit.record(ctx, self.action("updated"), target=(self.noun, current["id"], label), before=before, after=after)
        return True

    async def update(self, ctx: OrgContext, item_id: UUID, form: Form) -> bool:
        """Save the edit form; False if nothing changed."""
        current = await self.get(ctx.scope, item_id, lock=True)
        self.guard(ctx, current)
        return await self.apply(ctx, current, await self.validate(ctx, form, current))

    async def switch(self, ctx: OrgContext, item_id: UUID, raw: str) -> asyncpg.Record:
        """Flip the ``toggle`` field to the posted value; the row as it is now."""
        assert self.toggle is not None
        current = await self.get(ctx.scope, item_id, lock=True)
        self.guard(ctx, current)
        value = self.toggle.parse(raw)
        if value is None:
            raise Invalid(self.toggle.invalid, field_errors={self.toggle.field: self.toggle.invalid})
        await self.apply(ctx, current, {**self.audited(current), self.toggle.field: value})
        return await self.get(ctx.scope, item_id)

    async def delete(self, ctx: OrgContext, item_id: UUID) -> str:
        """Delete the row (refused while something uses it); its name."""
        current = await self.get(ctx.scope, item_id, lock=True)
        self.guard(ctx, current)
        if problem := self.in_use(current):
            raise Conflict(problem)
        try:
            async with common.savepoint():
                await ctx.scope.execute(f"DELETE FROM {self.table} WHERE org_id = {{org}} AND id = $1", item_id)
        except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError):  # a reference appeared since the check
            raise Conflict(self.in_use_meanwhile.format(name=current["name"])) from None
        await audit.record(
            ctx, self.action("deleted"), target=(self.noun, item_id, current["name"]), before=self.audited_on_delete(current)
        )
        return current["name"]
