"""``/api/v1/orgs/{slug}/connections``: the connections resource (``CONNECTIONS``) as JSON.

The secret is write-only, as on the pages: sent when creating, replaced with ``PUT …/secret``,
removed with ``DELETE …/secret``, and never in any response (only whether one is set, and since
when). A credential left in an old config is shown hidden, as on the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Response, delete, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from portal.api import common, resource
from portal.api.common import JSONObject, Name
from portal.params import parse_id
from portal.resources.connections.kinds import KINDS
from portal.resources.connections.service import CONNECTIONS, SECRET_MAX, replace_secret, shown_config
from portal.tenancy.context import OrgContext
from portal.web.problems import documented

Kind = Literal.__getitem__(tuple(KINDS))  # type: ignore[attr-defined]
Secret = Annotated[str, Meta(min_length=1, max_length=SECRET_MAX, description="Stored encrypted; never shown again")]


class Connection(msgspec.Struct):
    id: UUID
    name: str
    kind: Kind  # type: ignore[valid-type]
    config: JSONObject  # the non-secret configuration: the keys its kind declares
    secret_set: bool
    secret_set_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ConnectionCreate(msgspec.Struct):
    name: Name
    kind: Kind  # type: ignore[valid-type]
    config: JSONObject = {}
    secret: Secret | msgspec.UnsetType = msgspec.UNSET


class ConnectionUpdate(msgspec.Struct):
    """Only the fields given change; the kind is chosen once, the secret has its own URL."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    config: JSONObject | msgspec.UnsetType = msgspec.UNSET


class NewSecret(msgspec.Struct):
    secret: Secret


def connection(row: Any) -> Connection:
    return Connection(
        id=row["id"], name=row["name"], kind=row["kind"], config=shown_config(row["config"]),
        secret_set=row["secret_set_at"] is not None, secret_set_at=row["secret_set_at"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


SECRET = "/connections/{connection_id:str}/secret"
MANAGE = {"permission": CONNECTIONS.manage_permission}


@put(SECRET, name="api.connections.secret.replace", opt=MANAGE, responses=documented(422))
async def replace(org: NamedDependency[OrgContext], connection_id: FromPath[str], data: JSONBody[NewSecret]) -> Response[Connection]:
    """Replace the connection's secret. The response says only that one is set, and since when."""
    row = await replace_secret(org, parse_id(connection_id), {"secret": data.secret})
    return Response(connection(row), headers={"ETag": common.etag(row)})


@delete(SECRET, name="api.connections.secret.clear", opt=MANAGE, status_code=204, responses=documented())
async def clear(org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> None:
    """Remove the connection's secret (nothing to do when none is set)."""
    await replace_secret(org, parse_id(connection_id), {"action": "clear"})


SPEC = resource.Spec(CONNECTIONS, Connection, ConnectionCreate, ConnectionUpdate, to_item=connection, extra_routes=[replace, clear])
ROUTES = resource.routes(SPEC)
