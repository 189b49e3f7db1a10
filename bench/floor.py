"""The floor for throughput ratios: a bare ASGI app with no framework and no middleware that, for
each benchmarked page, runs exactly the SQL the portal ran for it (recorded once at start-up, same
statements, same arguments, same asyncpg methods, on one pooled connection) and renders the same
template with the same context. Our page ÷ this = what the framework, middleware and ORM cost.

Served like the portal: `uvicorn --factory bench.floor:create` or granian. Reads BENCH_FLOOR_PAGES
(JSON: [{"path": ..., "cookie": ...}]) and the portal's usual settings from the environment.
"""

from __future__ import annotations

import json
import os

import asyncpg
import httpx

from bench import recorder


async def _record(pages: list[dict]) -> dict[str, recorder.Recording]:
    from portal.app import create_app
    from portal.db import engine as db

    app = create_app(manage_pool=False)
    db.bind(os.environ["DATABASE_URL"])
    await db.start_pool(2)
    out = {}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for p in pages:
                with recorder.recording() as rec:
                    r = await client.get(p["path"], headers={"Cookie": p["cookie"]})
                if r.status_code != 200 or rec.template is None:
                    raise RuntimeError(f"recording {p['path']} failed: {r.status_code}")
                out[p["path"]] = rec
    finally:
        await db.close_pool()
    return out


def create():
    pages = json.loads(os.environ["BENCH_FLOOR_PAGES"])
    state: dict = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    from portal.web import render

                    state["recordings"] = await _record(pages)
                    state["templates"] = {k: render.env.get_template(r.template) for k, r in state["recordings"].items()}
                    state["pool"] = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=10)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["pool"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"] + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
        rec = state["recordings"].get(path)
        if rec is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        async with state["pool"].acquire() as conn:
            for method, sql, args in rec.statements:
                await getattr(conn, method)(sql, *args)
        body = state["templates"][path].render(rec.context).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.body", "body": body})

    return app
