"""What the resource services share: the page-number pager, text and JSON validation, audit diffs.
(Ids, search text and cursors from a request are read by ``portal.params``.)

No Litestar here: services raise domain errors and return plain data.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator
import asyncpg

from portal.db import engine as db
from portal.errors import Invalid, NameTaken

PAGE_SIZE = 25
NAME_MAX = 100
DESCRIPTION_MAX = 2000
FORM_ERROR = "Please correct the highlighted fields."

# Control characters (C0, DEL and C1) a text field refuses; a multi-line one keeps tab and newlines.
CONTROL = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
CONTROL_SINGLE_LINE = "\\x00-\\x1f\\x7f-\\x9f"
_CONTROL = re.compile(f"[{CONTROL}]")
_CONTROL_SINGLE_LINE = re.compile(f"[{CONTROL_SINGLE_LINE}]")


def has_control(value: str, *, multiline: bool = False) -> bool:
    """Whether ``value`` holds a control character (tab and newlines allowed when ``multiline``)."""
    return bool((_CONTROL if multiline else _CONTROL_SINGLE_LINE).search(value))


# What is trimmed from both ends: the spaces of JSON Schema's (ECMAScript's) whitespace class, so
# a value the API's schema calls blank is blank here too (``str.strip()`` differs at U+FEFF).
SPACE = " \t\n\r\x0b\x0c\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


@dataclass(frozen=True)
class Pager:
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_item(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        return min(self.offset + self.size, self.total)


def pager(total: int, requested: int, size: int = PAGE_SIZE) -> Pager:
    """A page past the end shows the last page rather than an empty one."""
    last = max(1, math.ceil(total / size))
    return Pager(min(requested, last), size, total)


# -- form fields ----------------------------------------------------------------------------------


class FormErrors(dict):
    """Field → message, raised together as one ``Invalid``."""

    def raise_if_any(self) -> None:
        if self:
            raise Invalid(FORM_ERROR, field_errors=dict(self))


def text(
    form: dict[str, str],
    name: str,
    errors: FormErrors,
    *,
    label: str,
    max_len: int,
    required: bool = True,
    multiline: bool = False,
) -> str:
    value = str(form.get(name, "")).strip(SPACE)
    if multiline:
        value = value.replace("\r\n", "\n")
    if not value:
        if required:
            errors[name] = f"Enter the {label}."
        return value
    if len(value) > max_len:
        errors[name] = f"Use at most {max_len:,} characters (this has {len(value):,})."
    elif has_control(value, multiline=multiline):
        errors[name] = "Remove the control characters."
    return value


def name_field(form: dict[str, str], errors: FormErrors, *, noun: str) -> str:
    return text(form, "name", errors, label=f"{noun}'s name", max_len=NAME_MAX)


def description_field(form: dict[str, str], errors: FormErrors) -> str:
    return text(form, "description", errors, label="description", max_len=DESCRIPTION_MAX, required=False, multiline=True)


# -- JSON documents -------------------------------------------------------------------------------


class JSONProblem(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise JSONProblem(f"{name} is not allowed in JSON; use a number or a string.")


def _check_values(value: Any, *, max_depth: int, path: str = "", depth: int = 1) -> None:
    """What PostgreSQL's jsonb and UTF-8 refuse, refused here with a message instead of a 500."""
    if depth > max_depth:
        raise JSONProblem(f"It is nested too deeply (at most {max_depth} levels).")
    if isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, float) and not math.isfinite(value):
        raise JSONProblem(f"{path or 'A value'}: the number is too large.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_string(key, path)
            _check_values(item, max_depth=max_depth, path=f"{path}.{key}" if path else key, depth=depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_values(item, max_depth=max_depth, path=f"{path}[{i}]", depth=depth + 1)


def _check_string(value: str, path: str) -> None:
    if "\x00" in value:
        raise JSONProblem(f"{path or 'A string'}: text can't contain the character \\u0000.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONProblem(f"{path or 'A string'}: contains an invalid Unicode escape.") from None


def parse_json_object(raw: str, *, max_chars: int, max_depth: int, example: str) -> dict:
    """Parse a JSON object typed into a form; ``JSONProblem`` says what is wrong and where."""
    if len(raw) > max_chars:
        raise JSONProblem(f"It is too large: at most {max_chars:,} characters.")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"This isn't valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise JSONProblem(f"It is nested too deeply (at most {max_depth} levels).") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise JSONProblem(str(exc) if isinstance(exc, JSONProblem) else "It contains a number that is too large.") from None
    if not isinstance(value, dict):
        raise JSONProblem(f"It must be a JSON object, like {example}.")
    _check_values(value, max_depth=max_depth)
    return value


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def pretty_json(value: Any) -> str:
    if isinstance(value, str):  # asyncpg returns jsonb as text
        value = json.loads(value)
    return json.dumps(value, indent=2, ensure_ascii=False)


def load_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# -- audit ---------------------------------------------------------------------------------------


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, as (before, after)."""
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


# -- database ------------------------------------------------------------------------------------


@asynccontextmanager
async def savepoint() -> AsyncIterator[None]:
    """A savepoint in the request transaction: a refused statement (duplicate name, a reference
    that vanished) rolls back to here, and the request can still answer with a page."""
    async with db.current_connection().transaction():
        yield


@asynccontextmanager
async def unique_name(message: str) -> AsyncIterator[None]:
    """Turn the per-org unique-name index's refusal into a field error."""
    try:
        async with savepoint():
            yield
    except asyncpg.UniqueViolationError:
        raise NameTaken(FORM_ERROR, field_errors={"name": message}) from None
