"""The Litestar application: routes, middleware, CSRF, error pages, lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.plugins.htmx import HTMXRequest
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp

from portal import domains
from portal.api.auth import TokenContextMiddleware
from portal.api.openapi import OPENAPI, describe
from portal.scim import routes as scim
from portal.web.problems import EXCEPTION_HANDLERS as API_EXCEPTION_HANDLERS
from portal.accounts.reauth import ReauthenticateMiddleware
from portal.config import ROOT, Settings, get_settings
from portal.db import engine as db
from portal.ops.metrics import MetricsMiddleware
from portal.tenancy.context import OrgContextMiddleware, provide_org, required_permission
from portal.web.auth import SessionMiddleware, csrf_cookie_name
from portal.web.errors import EXCEPTION_HANDLERS
from portal.web.fairshare import ClientShareMiddleware, FairShareMiddleware
from portal.web.head import HeadAsGet, allow_every_method
from portal.web.security import add_security_headers

ORG_PREFIX = "/orgs/{slug:str}"
API_ORG_PREFIX = "/api/v1/orgs/{slug:str}"
API_PATHS = "^/(api|scim)/"  # bearer tokens only: no session, no CSRF


def collect_routes() -> tuple[list, list, list]:
    top, org, api = [], [], []
    for module in domains.route_modules():
        top += getattr(module, "ROUTES", [])
        org += getattr(module, "ORG_ROUTES", [])
        api += getattr(module, "API_ROUTES", [])
    return top, org, api


def create_app(settings: Settings | None = None, *, manage_pool: bool = True, extra_routes: list | None = None) -> Litestar:
    settings = settings or get_settings()
    top, org, api_routes = collect_routes()
    top = [*top, *(extra_routes or [])]
    for handler in (*org, *api_routes, *scim.SCIM_ROUTES):
        required_permission(handler)  # refuse to start with an org route that names no permission

    org_router = Router(
        path=ORG_PREFIX,
        route_handlers=org,
        middleware=[ReauthenticateMiddleware, OrgContextMiddleware],
        dependencies={"org": Provide(provide_org, sync_to_thread=False)},
    )
    static = create_static_files_router(path="/static", directories=[ROOT / "static"], include_in_schema=False)
    api_router = Router(
        path=API_ORG_PREFIX,
        route_handlers=describe(api_routes),
        middleware=[TokenContextMiddleware],
        dependencies={"org": Provide(provide_org, sync_to_thread=False)},
        exception_handlers=API_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        security=[{"bearer": []}],
    )
    scim_router = Router(  # the org's SCIM service: SCIM tokens, the same org entry as the API
        path=scim.PREFIX,
        route_handlers=scim.SCIM_ROUTES,
        middleware=[TokenContextMiddleware],
        dependencies={"org": Provide(provide_org, sync_to_thread=False)},
        exception_handlers=scim.EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        include_in_schema=False,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        workers: list = []
        if manage_pool:
            db.bind(settings.database_url, statement_cache_size=settings.db_statement_cache)
            await db.start_pool(settings.db_pool_size, acquire_timeout=settings.db_acquire_timeout)
            await check_database_role()
            if settings.run_workers:
                from portal.exports.worker import ExportWorker  # builds export archives in the background
                from portal.mail.queue import MailWorker  # delivers the mail outbox

                workers = [ExportWorker(), MailWorker()]
                for worker in workers:
                    worker.start()
        try:
            yield
        finally:
            for worker in workers:
                await worker.stop()  # before the pool closes: a running export is handed back
            if manage_pool:
                await db.close_pool()

    app = Litestar(
        # The pages are not part of the API's OpenAPI document; the API is.
        route_handlers=[Router(path="/", route_handlers=[*top, org_router], include_in_schema=False), api_router, scim_router, static],
        request_class=HTMXRequest,  # ``request.htmx``: whether htmx sent it, its target, history restore…
        middleware=[ClientShareMiddleware, SessionMiddleware, FairShareMiddleware],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name=csrf_cookie_name(settings.secure_cookies),  # bound to the session: portal.web.auth
            cookie_path="/",
            cookie_domain=None,
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            cookie_samesite="lax",
            header_name="x-csrftoken",
            exclude=API_PATHS,  # bearer tokens only there: no ambient credential to forge
        ),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[add_security_headers, allow_every_method],
        lifespan=[lifespan],
        openapi_config=OPENAPI,
        logging_config=LoggingConfig(
            root={"level": "INFO", "handlers": ["queue_listener"]},
            loggers={"portal": {"level": "INFO", "propagate": True}},
            log_exceptions="never",
        ),
        debug=False,
    )
    app.state.settings = settings
    app.state.secure = settings.secure_cookies
    # Outside the app's exception handler, so the status counted is the one sent; before routing:
    # HEAD works wherever GET does.
    app.asgi_handler = HeadAsGet(MetricsMiddleware(app.asgi_handler))
    return app


async def check_database_role() -> None:
    """Refuse to serve as a role that row-level security does not bind."""
    async with db.connection() as conn:
        role = await conn.fetchrow(
            """SELECT r.rolname, r.rolsuper, r.rolbypassrls,
                      EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid AND c.relnamespace = 'public'::regnamespace) AS owns
               FROM pg_roles r WHERE r.rolname = current_user"""
        )
    if role["rolsuper"] or role["rolbypassrls"] or role["owns"]:
        raise RuntimeError(
            f"DATABASE_URL connects as {role['rolname']!r}, which is a superuser, bypasses row-level security or "
            "owns tables. Connect as the application's login role (see README, Deploying)."
        )


def asgi() -> ASGIApp:
    """Factory for ASGI servers (`uvicorn --factory portal.app:asgi`), called in each worker.

    Logging, the access log and trusted proxy headers are set up here, once for every server."""
    from portal import logs

    app = create_app()
    logs.configure()  # after create_app: Litestar's LoggingConfig has just replaced the root handlers
    return served(app)


def served(app: ASGIApp) -> ASGIApp:
    """The layers around the app in a server: the request id (first, while the scope still names
    the direct peer), trusted proxy headers, the access log."""
    from portal import logs
    from portal.web.accesslog import AccessLogMiddleware
    from portal.web.proxy import with_proxy_headers

    proxy = with_proxy_headers(AccessLogMiddleware(app))
    return logs.RequestIdMiddleware(proxy, trusted=proxy.trusted_hosts)  # one parsing of FORWARDED_ALLOW_IPS
