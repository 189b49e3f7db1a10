"""Reading urlencoded forms defensively: one string per field, whatever the client sends."""

from __future__ import annotations

from typing import Any

from litestar import Request

MAX_FIELD = 10_000


async def read_form(request: Request) -> dict[str, str]:
    """The submitted form as ``{name: str}``: duplicates keep the first value, NULs are dropped.

    Malformed bodies give an empty form (the handler then reports missing fields), never a 500.
    """
    try:
        form = await request.form()
    except Exception:  # a malformed body is the client's problem, reported as missing fields
        return {}
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in out or not isinstance(value, str):
            continue
        out[str(key)] = value.replace("\x00", "")[:MAX_FIELD]
    return out


def field(form: dict[str, Any], name: str) -> str:
    return str(form.get(name, "")).strip()
