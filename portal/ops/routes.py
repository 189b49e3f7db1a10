"""``/readyz`` and ``/metrics``: for load balancers and Prometheus (SPEC §15)."""

from __future__ import annotations

import hmac

import msgspec
from litestar import Request, Response, route
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from portal.config import get_settings
from portal.errors import NotFound
from portal.ops import metrics, readiness


@route("/readyz", name="ops.readyz", http_method=["GET", "HEAD"])
async def readyz() -> Response:
    """200 when this process can serve: the database answers and has every migration of this
    release; 503 otherwise. Only ``{"ready": …}``: the reason is in the log."""
    ready = await readiness.ready()
    return Response(
        msgspec.json.encode({"ready": ready}), status_code=200 if ready else 503,
        media_type="application/json", headers={"Cache-Control": "no-store"},
    )


@route("/metrics", name="ops.metrics", http_method=["GET", "HEAD"])
async def metrics_page(request: Request) -> Response:
    """Prometheus metrics, for the ``METRICS_TOKEN`` bearer; 404 while no token is configured."""
    token = get_settings().metrics_token
    if not token:
        raise NotFound()
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return Response(
            "Metrics need the METRICS_TOKEN as a bearer token.\n", status_code=401, media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
        )
    await metrics.collect()
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


ROUTES = [readyz, metrics_page]
