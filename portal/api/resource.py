"""The JSON API of a resource of ``portal.resources``: list, create, read, update and delete
from its one declaration (``layer.Resource``), with the pages' validation, permissions, scoping
and audit events.

* ``GET /{plural}``: a keyset page in name order (``limit`` ≤ 200, ``after``, ``q``) and the
  ``next`` page's URL;
* ``POST /{plural}``: 201 with ``Location`` and ``ETag``; ``Idempotency-Key`` honoured;
* ``GET /{plural}/{id}``: with ``ETag``;
* ``PATCH /{plural}/{id}``: only the fields given change; ``If-Match`` → 412 on a stale version;
* ``DELETE /{plural}/{id}``: 204, or 409 while something uses it.

A body is decoded by msgspec into the resource's API types (``Spec``), then handed to the
resource's own field readers as the strings a form would have posted: one validation for both.
"""

# No ``from __future__ import annotations``: the handlers below are built per resource, and
# Litestar reads their parameter types from real objects, not from strings naming local classes.

import inspect
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from portal.api import common, limits
from portal.params import parse_id, search_text
from portal.resources.layer import Resource
from portal.tenancy.context import OrgContext
from portal.web.problems import documented

Limit = Annotated[int, QueryParameter(ge=1, le=common.MAX_LIMIT, description="Items per page (at most 200)")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", min_length=1, max_length=limits.KEY_MAX, description="Retries with this key create nothing new"),
]


@dataclass(frozen=True)
class Spec:
    """How a resource looks in JSON: the item, the creating and the updating bodies."""

    resource: Resource
    item: type[msgspec.Struct]
    create: type[msgspec.Struct]
    update: type[msgspec.Struct]
    to_item: Callable[[Any], Any] | None = None  # a row → ``item`` (default: the same-named columns)
    to_form: Callable[[msgspec.Struct], dict[str, str]] = common.as_form  # a body → the form it stands for
    extra_routes: list = field(default_factory=list)


def _with_signature(fn: Callable, params: dict[str, Any], returns: Any) -> Callable:
    """``fn`` (taking ``**kwargs``) as Litestar should see it: these named, typed parameters."""
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=t, default=d) for n, (t, d) in params.items()],
        return_annotation=returns,
    )
    fn.__annotations__ = {**{n: t for n, (t, _) in params.items()}, "return": returns}
    return fn


NONE = inspect.Parameter.empty


def routes(spec: Spec) -> list:
    """The five routes of ``spec.resource``, named ``api.{plural}.list|create|get|update|delete``."""
    res, Item = spec.resource, spec.item
    to_item = spec.to_item or (lambda row: common.of_row(Item, row))
    id_param = res.id_param
    a_noun = ("an " if res.noun[0] in "aeiou" else "a ") + res.noun
    Page = msgspec.defstruct(
        f"{res.title}Page", [("items", list[Item]), ("next", str | None)],
        module=__name__,
    )
    Page.__doc__ = f"A page of {res.plural}; ``next`` is the next page's URL, or null on the last page."
    collection, one = f"/{res.plural}", f"/{res.plural}/{{{id_param}:str}}"
    view, manage = {"permission": res.view_permission}, {"permission": res.manage_permission}

    async def list_items(request: Request, org: OrgContext, limit: int = common.DEFAULT_LIMIT, after: str | None = None, q: str | None = None) -> Any:
        text = search_text(q)
        rows, cursor = await res.keyset(org.scope, after=after, limit=limit, q=text)
        return Page([to_item(r) for r in rows], common.next_link(request, cursor, limit, q=text))

    list_items.__doc__ = f"The organization's {res.plural} in name order, a page at a time; ``q`` searches them."
    _with_signature(list_items, {
        "request": (Request, NONE), "org": (NamedDependency[OrgContext], NONE), "limit": (Limit, common.DEFAULT_LIMIT),
        "after": (FromQuery[str | None], None), "q": (FromQuery[str | None], None),
    }, Page)

    async def create_item(request: Request, org: OrgContext, data: Any, idempotency_key: str | None = None) -> Any:
        if (earlier := await limits.replay(org, request)) is not None:
            return earlier
        new_id = await res.create(org, spec.to_form(data))
        row = await res.get(org.scope, new_id)
        headers = {"Location": f"{request.url.path}/{new_id}", "ETag": common.etag(row)}
        body = msgspec.json.encode(to_item(row))
        await limits.remember(org, request, 201, body, headers)
        return Response(body, status_code=201, media_type="application/json", headers=headers)

    create_item.__doc__ = f"Create {a_noun}. With ``Idempotency-Key``, a retry of the same request creates nothing and gets the first response again."
    _with_signature(create_item, {
        "request": (Request, NONE), "org": (NamedDependency[OrgContext], NONE), "data": (JSONBody[spec.create], NONE),
        "idempotency_key": (IdempotencyKey, None),
    }, Response[Item])

    async def get_item(org: OrgContext, **path: str) -> Any:
        row = await res.get(org.scope, parse_id(path[id_param]))
        return Response(to_item(row), headers={"ETag": common.etag(row)})

    get_item.__doc__ = f"One {res.noun}, with its version in ``ETag``."
    _with_signature(get_item, {"org": (NamedDependency[OrgContext], NONE), id_param: (FromPath[str], NONE)}, Response[Item])

    async def update_item(request: Request, org: OrgContext, data: Any, **path: str) -> Any:
        key = parse_id(path[id_param])
        current = await res.get(org.scope, key, lock=True)
        common.check_version(request, current, res.noun)
        await res.update(org, key, {**res.form_of(current), **spec.to_form(data)})
        row = await res.get(org.scope, key)
        return Response(to_item(row), headers={"ETag": common.etag(row)})

    update_item.__doc__ = f"Change some fields of {a_noun}. With ``If-Match``, only if it is still the version it names."
    _with_signature(update_item, {
        "request": (Request, NONE), "org": (NamedDependency[OrgContext], NONE), id_param: (FromPath[str], NONE),
        "data": (JSONBody[spec.update], NONE),
    }, Response[Item])

    async def delete_item(org: OrgContext, **path: str) -> None:
        await res.delete(org, parse_id(path[id_param]))

    delete_item.__doc__ = f"Delete {a_noun}. The audit log keeps a record of it."
    _with_signature(delete_item, {"org": (NamedDependency[OrgContext], NONE), id_param: (FromPath[str], NONE)}, None)

    name = f"api.{res.plural}"
    return [
        get(collection, name=f"{name}.list", opt=view, responses=documented())(list_items),
        post(collection, name=f"{name}.create", opt=manage, status_code=201, responses=documented(409, 422))(create_item),
        get(one, name=f"{name}.get", opt=view, responses=documented())(get_item),
        patch(one, name=f"{name}.update", opt=manage, responses=documented(409, 412, 422))(update_item),
        delete(one, name=f"{name}.delete", opt=manage, status_code=204, responses=documented(409))(delete_item),
        *spec.extra_routes,
    ]
