"""Reading urlencoded forms defensively: one string per field, whatever the client sends."""

from __future__ import annotations

from typing import Any, Mapping

from litestar import Request

MAX_FIELD = 10_000
MAX_REPEATS = 50  # values kept for a repeated field (a checklist)


class FormData(dict):
    """``{name: first value}``, and every value of a repeated field through ``getall``."""

    def __init__(self) -> None:
        super().__init__()
        self.repeated: dict[str, list[str]] = {}

    def getall(self, name: str) -> list[str]:
        return self.repeated.get(name, [])


def getall(form: Mapping[str, Any], name: str) -> list[str]:
    """Every value of ``name``: a repeated form field, or a list given by code (the demo, tests)."""
    if isinstance(form, FormData):
        return form.getall(name)
    value = form.get(name)
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


async def read_form(request: Request) -> FormData:
    """The submitted form as ``{name: str}``: duplicates keep the first value (``getall`` has
    them all), NULs are dropped.

    Malformed bodies give an empty form (the handler then reports missing fields), never a 500.
    """
    out = FormData()
    try:
        form = await request.form()
    except Exception:  # a malformed body is the client's problem, reported as missing fields
        return out
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        key, value = str(key), value.replace("\x00", "")[:MAX_FIELD]
        values = out.repeated.setdefault(key, [])
        if len(values) < MAX_REPEATS:
            values.append(value)
        if key not in out:
            out[key] = value
    return out


def field(form: dict[str, Any], name: str) -> str:
    return str(form.get(name, "")).strip()
