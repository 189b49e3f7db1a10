"""Record what one request does: every SQL statement sent (and with which method and arguments),
and the template rendered with its context. Used to count statements per request and to build
the floor app, which replays exactly the same SQL and template with no framework around it."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")
_current: contextvars.ContextVar["Recording | None"] = contextvars.ContextVar("bench_recording", default=None)
_installed = False


@dataclass
class Recording:
    statements: list[tuple[str, str, tuple]] = field(default_factory=list)  # (method, sql, args)
    template: str | None = None
    context: dict[str, Any] | None = None


def install() -> None:
    """Wrap asyncpg's query methods once; they record only inside `recording()`."""
    global _installed
    if _installed:
        return
    for name in _METHODS:
        original = getattr(asyncpg.Connection, name)

        def make(original=original, name=name):
            async def wrapper(self, query, *args, **kwargs):
                rec = _current.get()
                if rec is not None:
                    rec.statements.append((name, query, args))
                return await original(self, query, *args, **kwargs)

            return wrapper

        setattr(asyncpg.Connection, name, make())

    from portal.web import render

    original_get = render.env.get_template

    def get_template(name, *a, **kw):
        template = original_get(name, *a, **kw)
        rec = _current.get()
        if rec is None or rec.template is not None or name.startswith("_components/"):
            return template

        class Capturing:
            def render(self, *args, **kwargs):
                ctx = dict(*args, **kwargs)
                rec.template, rec.context = name, ctx
                return template.render(ctx)

            def __getattr__(self, item):
                return getattr(template, item)

        return Capturing()

    render.env.get_template = get_template
    _installed = True


@contextmanager
def recording():
    install()
    rec = Recording()
    token = _current.set(rec)
    try:
        yield rec
    finally:
        _current.reset(token)


@contextmanager
def count_statements():
    """The statements sent while the block runs (in this task and the tasks it starts), as
    (method, sql, args): what tests count to prove a page's queries don't grow with rows."""
    with recording() as rec:
        yield rec.statements
