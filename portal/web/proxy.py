"""Trusted proxy headers, handled once in the app for every server.

``X-Forwarded-For``/``-Proto`` are honoured only from the addresses in ``FORWARDED_ALLOW_IPS``
(comma-separated addresses or networks, ``*`` for any; default ``127.0.0.1``), with uvicorn's own
middleware so the semantics are uvicorn's. ``portal serve`` turns the servers' handling off, so
rate limits and logs see the client this picks and nothing else. The same addresses are the
only peers whose ``X-Request-ID`` the logs take over (``portal.logs.RequestIdMiddleware``).
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

DEFAULT_TRUSTED = "127.0.0.1"


def trusted_proxies() -> str:
    """As uvicorn reads it: set but empty trusts no one."""
    return os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_TRUSTED)


def with_proxy_headers(app: Any) -> ProxyHeadersMiddleware:
    return ProxyHeadersMiddleware(app, trusted_hosts=trusted_proxies())
