"""The pages of a resource, built from its declaration (``portal.resources.layer``).

``routes(resource)`` returns the named, permission-declaring handlers every resource has:

=====================  =======================================  ==================
name                   path (under /orgs/{slug})                permission
=====================  =======================================  ==================
``<plural>.list``      GET /<plural>                            org.view
``<plural>.new``       GET /<plural>/new                        resources.manage
``<plural>.create``    POST /<plural>                           resources.manage
``<plural>.detail``    GET /<plural>/{<noun>_id}                org.view
``<plural>.edit``      GET /<plural>/{<noun>_id}/edit           resources.manage
``<plural>.update``    POST /<plural>/{<noun>_id}/edit          resources.manage
``<plural>.toggle``    POST /<plural>/{<noun>_id}/<field>       resources.manage (with a Toggle)
``<plural>.confirm``   GET /<plural>/{<noun>_id}/delete         resources.manage
``<plural>.delete``    POST /<plural>/{<noun>_id}/delete        resources.manage
=====================  =======================================  ==================

Pages: ``resources/list.html`` and ``resources/form.html`` for every resource, drawing the
resource's own cells and fields from the macros in ``resources/_<noun>.html``; the detail page
``resources/<noun>.html`` is each resource's own.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from types import SimpleNamespace
from uuid import UUID

from litestar import Response, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.params import page_number, parse_id, search_text
from portal.resources.layer import Resource
from portal.tenancy.context import OrgContext
from portal.web.forms import read_form
from portal.web.render import env, page, redirect, safe_next
from portal.web.urls import Urls, url_for

LIST = "resources/list.html"
FORM = "resources/form.html"
DETAIL = "resources/detail.html"
CONFIRM = "resources/confirm_delete.html"

Handler = Callable[..., Awaitable[Response]]


def fragment(request: HTMXRequest, block: str) -> str | None:
    """The block to render alone for an htmx request; a history restore needs the whole page."""
    htmx = request.htmx  # Litestar's HTMXRequest (the app's request class)
    if htmx and not htmx.history_restore_request:
        return block
    return None


def back_to(request: HTMXRequest, form: dict[str, str], default: str) -> str:
    """Where a no-JS form returns to: the page it was posted from, if it is one of this org's."""
    target = safe_next(form.get("next"), default)
    return target if target.startswith(url_for(request, "orgs.dashboard") + "/") else default


def removed(message: str) -> Response:
    """For an htmx delete from a list: an empty body replaces the row, the flash says what happened."""
    flash = env.get_template("_components/flash.html").render(flashes=[("success", message)], oob=True)
    return Response(flash, status_code=200, media_type="text/html", headers={"Vary": "HX-Request"})


_MARKER = "__id__"


def _item_paths(urls: Urls, res: Resource, slug: str) -> list[tuple[str, str]]:
    actions = ("detail", "edit", "update", "confirm", "delete", *(("toggle",) if res.toggle else ()))
    return [(action, urls.reverse(f"{res.plural}.{action}", slug, {res.id_param: _MARKER})) for action in actions]


def links_for(request: HTMXRequest, res: Resource) -> Callable[[Any], SimpleNamespace]:
    """``links(item)`` for the templates: the item's named routes in one call (a list draws a few
    per row, and a template macro per link costs ten times more)."""
    urls, slug = Urls.for_app(request.app), request.scope["state"]["org"].org.slug
    # Each route reversed once per org and process, with a marker for the id; an item's links
    # replace it.
    paths = urls.cached(("links", res.plural, slug), lambda: _item_paths(urls, res, slug))

    def links(item: Any) -> SimpleNamespace:
        key = item["id"]
        key = str(key if isinstance(key, UUID) else UUID(str(key)))  # always a UUID: nothing to quote
        # Attributes, not a dict: in a template ``u.update`` would be the dict's own method.
        return SimpleNamespace(**{action: path.replace(_MARKER, key) for action, path in paths})

    return links


async def resource_page(request: HTMXRequest, template: str, res: Resource, **context: Any) -> Response:
    """A page of ``res``: the templates find the resource as ``res`` and its links as ``links``."""
    return await page(request, template, res=res, links=links_for(request, res), **context)


def item_id(request: HTMXRequest, res: Resource):
    return parse_id(request.path_params[res.id_param])


async def form_page(
    request: HTMXRequest, org: OrgContext, res: Resource, *, form: dict, errors: dict, item: Any = None,
    status: int = 200, block: str | None = None,
) -> Response:
    context = await res.form_context(org, form, item)
    return await resource_page(
        request, FORM, res, status=status, block=block, form=res.shown_form(form), errors=errors, item=item,
        part=res.form_fragment, **context,
    )


async def detail_page(
    request: HTMXRequest, org: OrgContext, res: Resource, item: Any, *, part: str | None = None, **extra: Any
) -> Response:
    """The detail page, or with ``part`` (for htmx) just that macro of the resource's parts."""
    block = fragment(request, "part") if part else None
    context = {"item": item, "errors": {}, "part": part, **await res.detail_context(org, item), **extra}
    return await resource_page(request, DETAIL, res, block=block, **context)


def _handler(fn: Handler, res: Resource, action: str) -> Handler:
    fn.__name__ = fn.__qualname__ = f"{res.plural}_{action}"
    return fn


def routes(res: Resource) -> list[HTTPRouteHandler]:
    """The handlers every resource has, named ``<plural>.<action>``."""
    base = f"/{res.plural}"
    one = f"{base}/{{{res.id_param}:str}}"
    view = {"permission": res.view_permission}
    manage = {"permission": res.manage_permission}
    name = res.plural

    async def list_(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        q = search_text(request.query_params.get("q"))
        found = await res.page(org.scope, q, page_number(request.query_params.get("page")))
        return await resource_page(
            request, LIST, res, block=fragment(request, "results"), items=found.rows, pager=found.pager, q=q,
            **res.list_context(),
        )

    async def new(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        form = res.form_defaults(request.query_params)
        wanted = res.form_fragment and request.headers.get("hx-target") == res.form_fragment_target
        block = fragment(request, "part") if wanted else None
        return await form_page(request, org, res, form=form, errors={}, block=block)

    async def create(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        form = await read_form(request)
        try:
            new_id = await res.create(org, form)
        except Invalid as exc:
            return await form_page(request, org, res, form=form, errors=exc.field_errors, status=HTTP_422_UNPROCESSABLE_ENTITY)
        return redirect(request, url_for(request, f"{name}.detail", **{res.id_param: new_id}), res.created_message)

    async def detail(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        return await detail_page(request, org, res, await res.get(org.scope, item_id(request, res)))

    async def edit(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        item = await res.get(org.scope, item_id(request, res))
        res.guard(org, item)  # no form for what this person may not change
        return await form_page(request, org, res, form=res.form_of(item), errors={}, item=item)

    async def update(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        key = item_id(request, res)
        form = await read_form(request)
        try:
            changed = await res.update(org, key, form)
        except Invalid as exc:
            item = await res.get(org.scope, key)
            return await form_page(
                request, org, res, form=res.resubmitted(form, item), errors=exc.field_errors, item=item,
                status=HTTP_422_UNPROCESSABLE_ENTITY,
            )
        message = f"{res.title} saved." if changed else "No changes to save."
        return redirect(request, url_for(request, f"{name}.detail", **{res.id_param: key}), message)

    async def toggle(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        assert res.toggle is not None
        key = item_id(request, res)
        form = await read_form(request)
        item = await res.switch(org, key, form.get(res.toggle.field, ""))
        message = res.toggle.message(item)
        if block := fragment(request, "row"):
            return await resource_page(request, LIST, res, block=block, item=item, message=message, **res.list_context())
        return redirect(request, back_to(request, form, url_for(request, f"{name}.detail", **{res.id_param: key})), message)

    async def confirm(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        item = await res.get(org.scope, item_id(request, res))
        res.guard(org, item)
        return await resource_page(
            request, CONFIRM, res, item=item, blocker=res.delete_blocker(item), consequence=res.delete_consequence(item),
            **await res.confirm_context(org, item),
        )

    async def delete(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
        form = await read_form(request)
        deleted = await res.delete(org, item_id(request, res))
        message = f"{res.title} “{deleted}” deleted."
        if request.htmx and form.get("from") == "list":
            return removed(message)
        return redirect(request, url_for(request, f"{name}.list"), message)

    handlers = [
        get(base, name=f"{name}.list", opt=view)(_handler(list_, res, "list")),
        get(f"{base}/new", name=f"{name}.new", opt=manage)(_handler(new, res, "new")),
        post(base, name=f"{name}.create", opt=manage, status_code=303)(_handler(create, res, "create")),
        get(one, name=f"{name}.detail", opt=view)(_handler(detail, res, "detail")),
        get(f"{one}/edit", name=f"{name}.edit", opt=manage)(_handler(edit, res, "edit")),
        post(f"{one}/edit", name=f"{name}.update", opt=manage, status_code=303)(_handler(update, res, "update")),
        get(f"{one}/delete", name=f"{name}.confirm", opt=manage)(_handler(confirm, res, "confirm")),
        post(f"{one}/delete", name=f"{name}.delete", opt=manage, status_code=303)(_handler(delete, res, "delete")),
    ]
    if res.toggle is not None:
        path = f"{one}/{res.toggle.field}"
        handlers.append(post(path, name=f"{name}.toggle", opt=manage, status_code=303)(_handler(toggle, res, "toggle")))
    return handlers
