"""The API reference page (``/docs/api``): drawn from the OpenAPI document, public, no script."""

from __future__ import annotations

from tests.factories import Client


async def test_the_reference_lists_every_operation_of_the_openapi_document(app):
    c = Client(app)
    doc = (await c.get("/api/v1/openapi.json")).json()
    r = await c.get("/docs/api")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert f"<code>{path}</code>" in r.text and op["summary"] in r.text.replace("&#39;", "'"), (method, path)
    assert "<script" not in r.text.split("</head>")[1] or "htmx" in r.text  # no script of its own, no CDN
    assert "https://" not in r.text.replace("https://www.w3.org", "")
    assert 'id="schema-Agent"' in r.text and "Needs the permission <code>resources.manage</code>" in r.text
    await c.aclose()
