"""Rendering pages and htmx fragments, and redirecting after a successful POST.

Full pages extend ``layout.html``; a fragment is a named block of the same template, rendered
alone for htmx requests (jinja2-fragments), so there is one template per page, not two.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2_fragments import render_block
from litestar import Request, Response
from litestar.plugins.htmx import ClientRedirect, HTMXDetails, HTMXRequest
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER

from portal.config import ROOT
from portal.tenancy.permissions import ROLE_LABELS, Perm, Role
from portal.web import flash
from portal.web.urls import Urls, reverse

env = Environment(
    loader=FileSystemLoader(str(ROOT / "templates")),
    autoescape=select_autoescape(["html", "xml", "txt"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates change only with a deploy, which restarts the process: no stat() of every
    # template and include on every render.
    auto_reload=False,
)
env.globals.update(
    Perm=Perm,
    Role=Role,
    ROLE_LABELS=ROLE_LABELS,
)


@pass_context
def _url_for(context: Any, name: str, /, **params: Any) -> str:
    """``url_for("agents.detail", agent_id=a.id)`` in templates; the org's slug is filled in.

    Pages rendered by ``page()`` get a faster one bound to their request (``base_context``): a
    ``pass_context`` function called in a macro costs a derived context per call."""
    org = context.get("org")
    return reverse(context["request"].app, name, org.org.slug if org is not None else None, params)


# The org sidebar: (route, label, permission needed, how it is marked current). A route of None
# is a heading, shown when the role may open any link under it. "exact": on its own page only;
# "below": on its page and the pages under it; a route name: also on the pages under that route.
_SIDEBAR: tuple[tuple[str | None, str, tuple[Perm, ...], str], ...] = (
    ("orgs.dashboard", "Dashboard", (), "exact"),
    ("members.list", "Members", (), "below"),
    ("invites.list", "Invites", (Perm.MANAGE_MEMBERS,), "below"),
    ("roles.list", "Roles", (Perm.MANAGE_MEMBERS,), "below"),
    (None, "Resources", (), ""),
    ("agents.list", "Agents", (), "below"),
    ("workflows.list", "Workflows", (), "below"),
    ("connections.list", "Connections", (), "below"),
    ("teams.list", "Teams", (), "below"),
    (None, "Administration", (Perm.BILLING, Perm.AUDIT, Perm.EXPORT, Perm.MANAGE_ORG), ""),
    ("billing.page", "Billing", (Perm.BILLING,), "below"),
    ("audit.log", "Audit log", (Perm.AUDIT,), "below"),
    ("audit.access_report", "Access report", (Perm.AUDIT,), "below"),
    ("exports.index", "Data export", (Perm.EXPORT,), "below"),
    ("api_tokens.list", "API tokens", (Perm.MANAGE_MEMBERS,), "below"),
    ("scim.tokens", "SCIM provisioning", (Perm.MANAGE_ORG,), "below"),
    ("orgs.settings", "Settings", (Perm.MANAGE_ORG,), "members.transfer_form"),
    ("members.leave_confirm", "Leave organization", (Perm.LEAVE,), "below"),
)


def _sidebar_links(urls: Urls, slug: str) -> list[tuple[str | None, str, tuple[Perm, ...], str, str | None]]:
    """The sidebar's links for one org: (href, label, permissions, mark, href of ``mark``)."""
    links = []
    for name, label, perms, mark in _SIDEBAR:
        href = urls.reverse(name, slug, {}) if name else None
        under = urls.reverse(mark, slug, {}) if name and mark not in ("exact", "below") else None
        links.append((href, label, perms, mark, under))
    return links


def _sidebar_for(urls: Urls) -> Callable[[Any, str], list[tuple[str | None, str, bool]]]:
    """The sidebar's entries for the page: (href or None for a heading, label, current). Drawn
    in Python, its links reversed once per org and process."""

    def sidebar(org: Any, path: str) -> list[tuple[str | None, str, bool]]:
        slug = org.org.slug
        entries: list[tuple[str | None, str, bool]] = []
        for href, label, perms, mark, under in urls.cached(("sidebar", slug), lambda: _sidebar_links(urls, slug)):
            if perms and not any(org.can(perm) for perm in perms):
                continue
            if href is None:
                entries.append((None, label, False))
                continue
            current = path == href if mark == "exact" else path.startswith(href)
            if not current and under is not None:
                current = path.startswith(under)
            entries.append((href, label, current))
        return entries

    return sidebar


def _url_for_request(urls: Urls, org: Any) -> Callable[..., str]:
    slug = org.org.slug if org is not None else None

    def url_for(name: str, /, **params: Any) -> str:
        return urls.reverse(name, slug, params)

    return url_for


env.globals["url_for"] = _url_for


def _fmt_dt(value: Any, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return value.strftime(fmt) if value else ""


env.filters["dt"] = _fmt_dt
env.filters["date"] = lambda v: _fmt_dt(v, "%Y-%m-%d")
def _role_label(role: str, name: str | None = None) -> str:
    """A role's name for people: a custom role's own name (``name``), a built-in role's label."""
    if role == Role.CUSTOM:
        return name or ROLE_LABELS[Role.CUSTOM]
    return ROLE_LABELS.get(Role(role), role) if role in Role._value2member_map_ else role


env.filters["role_label"] = _role_label
env.filters["urlencode_params"] = lambda d: urlencode({k: v for k, v in d.items() if v not in (None, "")})


def is_htmx(request: Request) -> bool:
    """Whether htmx sent ``request``. The app's ``request_class`` is ``HTMXRequest``, so handlers
    can say ``request.htmx`` directly; this stays for call sites not yet moved over (and for a
    plain ``Request`` built by hand, e.g. in a middleware)."""
    htmx = request.htmx if isinstance(request, HTMXRequest) else HTMXDetails(request)
    return bool(htmx)


def csrf_token(request: Request) -> str:
    # Error pages raised before the CSRF middleware ran fall back to the cookie's token.
    config = request.app.csrf_config
    cookie = request.cookies.get(config.cookie_name, "") if config is not None else ""
    return value_or_default(ScopeState.from_scope(request.scope).csrf_token, "") or cookie


def base_context(request: Request, extra: dict[str, Any]) -> dict[str, Any]:
    org = request.scope.get("state", {}).get("org")
    ctx: dict[str, Any] = {
        "request": request,
        "user": request.scope.get("user"),
        "org": org,
        "csrf_token": csrf_token(request),
        "path": request.url.path,
    }
    urls = Urls.for_app(request.app)
    ctx["url_for"] = _url_for_request(urls, org)
    ctx["sidebar"] = _sidebar_for(urls)
    ctx.update(extra)
    return ctx


async def page(
    request: Request,
    template: str,
    *,
    status: int = HTTP_200_OK,
    block: str | None = None,
    message: str | None = None,
    category: str = "success",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Render ``template``; for htmx requests with ``block``, just that block.

    ``message`` shows a flash message: on a full page in the flash area, on a fragment as an
    out-of-band swap of the same area.
    """
    fragment = block is not None and is_htmx(request)
    ctx = base_context(request, extra)
    flashes: list[tuple[str, str]] = []
    had_cookie = flash.COOKIE in request.cookies
    if not fragment:
        flashes = flash.pop_flashes(request)
        if ctx["user"] is not None and "my_orgs" not in ctx:
            # The switcher's orgs, read before the handler ran: with the org on an org's pages,
            # with the session everywhere else (``portal.web.auth``).
            org = ctx["org"]
            ctx["my_orgs"] = org.my_orgs if org is not None and org.my_orgs is not None else ctx["user"].orgs
    if message:
        flashes.append((category, message))
    ctx["flashes"] = flashes
    if fragment:
        html = render_block(env, template, block, ctx)
        if message:
            html += env.get_template("_components/flash.html").render(ctx | {"oob": True})
    else:
        html = env.get_template(template).render(ctx)
    response = Response(html, status_code=status, media_type="text/html", headers={"Vary": "HX-Request", **(headers or {})})
    if had_cookie and not fragment:
        response.set_cookie(flash.clear_cookie())
    return response


def redirect(request: Request, url: str, message: str | None = None, category: str = "success") -> Response:
    """Post/Redirect/Get: 303 for browsers, ``HX-Redirect`` for htmx (which would follow a 303 itself)."""
    if is_htmx(request):
        response: Response = ClientRedirect(url)  # 200 + HX-Redirect: htmx loads the page itself
        response.status_code = HTTP_200_OK  # not the POST handler's declared 303 (which htmx would follow)
        response.content = b""  # not JSON ``null``: the same empty body as the 303
    else:
        response = Response("", status_code=HTTP_303_SEE_OTHER, headers={"Location": url})
    response.headers["Vary"] = "HX-Request"
    if message:
        response.set_cookie(flash.flash_cookie(message, category))
    return response


def safe_next(target: str | None, default: str = "/orgs") -> str:
    """Only local paths: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if len(target) > 2000 or any(not 0x21 <= ord(c) <= 0x7E for c in target):
        return default  # printable ASCII only: a header value must never break the response
    return target
