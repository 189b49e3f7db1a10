"""``/docs/api``: the JSON API's reference, drawn from the same OpenAPI document Litestar serves at
``/api/v1/openapi.json`` (so it can't drift from the routes), rendered on the server from our
own templates and stylesheet: no script, no CDN."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get
from markupsafe import Markup, escape

from portal.web.render import page

_CODE = re.compile(r"`([^`]+)`")


def prose(text: str | None) -> Markup:
    """Markdown's `code` and paragraphs, the only markup the descriptions use."""
    if not text:
        return Markup("")
    paragraphs = [_CODE.sub(r"<code>\1</code>", str(escape(p.strip()))) for p in text.split("\n\n") if p.strip()]
    return Markup("".join(f"<p>{p}</p>" for p in paragraphs))


def type_of(schema: dict[str, Any]) -> str:
    """A schema in a few words: ``string (uuid)``, ``Agent``, ``array of Team``, ``one of …``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            parts = [type_of(s) for s in schema[key]]
            return " or ".join(dict.fromkeys(p for p in parts if p != "null")) + (" or null" if "null" in parts else "")
    if "enum" in schema:
        return "one of " + ", ".join(f"“{v}”" for v in schema["enum"])
    if "const" in schema:
        return f"“{schema['const']}”"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and "properties" not in schema:
        return "object"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


@dataclass
class Shape:
    name: str
    fields: list[tuple[str, str, bool, str]]  # name, type, required, description


@dataclass
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: Markup
    parameters: list[tuple[str, str, str, bool, str]]  # name, in, type, required, description
    body: Shape | None
    responses: list[tuple[str, str, str]]  # status, description, type


@dataclass
class Section:
    tag: str
    operations: list[Operation] = field(default_factory=list)


def _shape(doc: dict[str, Any], schema: dict[str, Any]) -> Shape | None:
    name = type_of(schema)
    if "$ref" in schema:
        schema = doc["components"]["schemas"][name]
    props = schema.get("properties")
    if not props:
        return None
    required = set(schema.get("required", ()))
    return Shape(name, [(k, type_of(v), k in required, v.get("description", "")) for k, v in props.items()])


def reference(doc: dict[str, Any]) -> tuple[list[Section], dict[str, Shape]]:
    """The operations by tag, in the document's order, and the schemas their responses name."""
    sections: dict[str, Section] = {}
    named: dict[str, Shape] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            tag = (op.get("tags") or ["API"])[0]
            body = None
            if content := op.get("requestBody", {}).get("content"):
                body = _shape(doc, next(iter(content.values())).get("schema", {}))
            responses = []
            for status, response in op.get("responses", {}).items():
                schema = next(iter(response.get("content", {}).values()), {}).get("schema")
                responses.append((status, response.get("description", ""), type_of(schema) if schema else ""))
                if schema and (shape := _shape(doc, schema)) and shape.name != "Problem":
                    named.setdefault(shape.name, shape)
            params = [
                (p["name"], p["in"], type_of(p.get("schema", {})), p.get("required", False), p.get("description", ""))
                for p in op.get("parameters", [])
            ]
            anchor = f"{method}-{re.sub(r'[^a-z0-9]+', '-', path.lower()).strip('-')}"
            sections.setdefault(tag, Section(tag)).operations.append(
                Operation(method.upper(), path, anchor, op.get("summary", ""), prose(op.get("description")), params, body, responses)
            )
    return list(sections.values()), named


@get("/docs/api", name="api.docs", include_in_schema=False)
async def api_docs(request: Request) -> Response:
    drawn = request.app.state.get(_DRAWN)
    if drawn is None:  # the routes don't change while the app runs: drawn once
        doc = request.app.openapi_schema.to_schema()
        drawn = request.app.state[_DRAWN] = {"info": doc["info"], "intro": prose(doc["info"].get("description")), **dict(zip(("sections", "shapes"), reference(doc)))}
    return await page(request, "api/docs.html", **drawn)


_DRAWN = "portal.api.docs"


ROUTES = [api_docs]
