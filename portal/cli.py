"""The `portal` command: serve, migrate, demo, dev (what `make run` calls), admin."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from portal.config import ROOT, ConfigError, load_settings, set_settings

DEV_PG_PORT = int(os.environ.get("PORTAL_PG_PORT", "54329"))


def _settings():
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"portal: {exc}")
    set_settings(settings)
    return settings


def cmd_migrate(args) -> None:
    from portal.db.migrate import migrate

    migrate(_settings())


def _with_db(coro_fn):
    settings = _settings()
    from portal.db import engine as db

    async def run():
        db.bind(settings.database_url, statement_cache_size=settings.db_statement_cache)
        await db.start_pool(2)
        try:
            return await coro_fn()
        finally:
            await db.close_pool()

    return asyncio.run(run())


def cmd_demo(args) -> None:
    from portal import demo

    created = _with_db(demo.load_demo)
    print("demo organization created" if created else "demo organization already present")


def cmd_serve(args) -> None:
    """Either server, one setup: the app (``portal.app.asgi``) handles proxy headers and writes
    the access log; the servers' own are off, and both get the same logging configuration."""
    _settings()  # fail early with a clear message
    from portal import logs

    if args.access_log:
        os.environ[logs.ACCESS_LOG_ENV] = "1"  # read again in each worker process
    log_config = logs.logging_config()
    if args.server == "granian" or args.server is None and args.workers > 1:
        # Several workers: granian, which spreads kept-alive connections over its workers;
        # uvicorn's share one socket and a few busy clients can land on one of them
        # (bench/results.md: 2 workers ÷ 1 = 1.21 under granian, 0.92 under uvicorn).
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "portal.app:asgi", address=args.host, port=args.port, workers=args.workers,
            interface=Interfaces.ASGI, factory=True, log_access=False, log_dictconfig=log_config,
        ).serve()
    else:
        import uvicorn

        uvicorn.run(
            "portal.app:asgi", factory=True, host=args.host, port=args.port, workers=args.workers,
            proxy_headers=False, access_log=False, log_level="info", log_config=log_config,
        )


def cmd_dev(args) -> None:
    """Embedded PostgreSQL (unless DATABASE_URL is set) → migrate → demo → serve."""
    from portal import devdb

    cluster = None
    if not os.environ.get("DATABASE_URL"):
        data = Path(os.environ.get("PORTAL_DATA_DIR", str(ROOT / ".portal")))
        cluster = devdb.Cluster(data / "pg", DEV_PG_PORT)
        fresh = not cluster.initialized
        print(f"portal: {'creating' if fresh else 'reusing'} the embedded PostgreSQL cluster in {data / 'pg'} (port {DEV_PG_PORT})")
        cluster.init()
        cluster.start()
        app_url, owner_url = asyncio.run(cluster.bootstrap())
        os.environ.update(DATABASE_URL=app_url, MIGRATE_DATABASE_URL=owner_url)
    os.environ.setdefault("PORTAL_DEV", "1")
    try:
        cmd_migrate(args)
        cmd_demo(args)
        from portal.demo import DEMO_OWNER, DEMO_PASSWORD

        url = f"http://{args.host}:{args.port}"
        print(
            f"\n  Praesidia portal on {url}\n  Sign in as {DEMO_OWNER[0]} / {DEMO_PASSWORD}"
            f" (owner of “Acme AI”)\n  Press Ctrl-C to stop.\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            cmd_serve(args)
        except KeyboardInterrupt:
            pass
    finally:
        if cluster is not None:
            cluster.stop()
            print(f"portal: embedded PostgreSQL stopped (data kept in {cluster.root})")


def cmd_admin(args) -> None:
    """Platform administration, outside any organization: list users and orgs."""
    settings = _settings()
    import asyncpg

    async def run():
        conn = await asyncpg.connect(settings.migrate_database_url)
        try:
            if args.what == "users":
                rows = await conn.fetch("SELECT email, name, created_at FROM app_user ORDER BY created_at")
                for r in rows:
                    print(f"{r['email']}\t{r['name']}\t{r['created_at']:%Y-%m-%d}")
            else:
                # Organizations only: tenant tables stay behind RLS even for the owner role.
                rows = await conn.fetch("SELECT slug, name, created_at FROM organization ORDER BY slug")
                for r in rows:
                    print(f"{r['slug']}\t{r['name']}\t{r['created_at']:%Y-%m-%d}")
        finally:
            await conn.close()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="portal", description="Praesidia portal")
    sub = parser.add_subparsers(dest="command", required=True)

    def serve_args(p):
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=1)
        p.add_argument(
            "--server", choices=["uvicorn", "granian"], default=None,
            help="default: uvicorn for one worker, granian for several",
        )
        p.add_argument("--access-log", action="store_true", help="log each request (secret links redacted; same as PORTAL_ACCESS_LOG=1)")

    p = sub.add_parser("serve", help="serve the portal (DATABASE_URL, SECRET_KEY required)")
    serve_args(p)
    p.set_defaults(fn=cmd_serve)
    sub.add_parser("migrate", help="apply migrations as the owner role, then grant the app role").set_defaults(fn=cmd_migrate)
    sub.add_parser("demo", help="load the demo organization (idempotent)").set_defaults(fn=cmd_demo)
    p = sub.add_parser("dev", help="embedded PostgreSQL + migrate + demo + serve (what `make run` does)")
    serve_args(p)
    p.set_defaults(fn=cmd_dev)
    p = sub.add_parser("admin", help="platform administration")
    p.add_argument("what", choices=["users", "orgs"])
    p.set_defaults(fn=cmd_admin)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
