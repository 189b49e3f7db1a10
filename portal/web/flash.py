"""Flash messages carried across one redirect in a signed cookie."""

from __future__ import annotations

import json

from itsdangerous import BadSignature, URLSafeSerializer
from litestar import Request
from litestar.datastructures import Cookie

from portal.config import get_settings

COOKIE = "portal_flash"


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key, salt="flash")


def flash_cookie(message: str, category: str = "success") -> Cookie:
    value = _signer().dumps([[category, message[:300]]])
    return Cookie(key=COOKIE, value=value, httponly=True, samesite="lax", secure=get_settings().secure_cookies, path="/")


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    try:
        items = _signer().loads(raw)
        return [(str(c), str(m)) for c, m in items][:5]
    except (BadSignature, ValueError, TypeError, json.JSONDecodeError):
        return []


def clear_cookie() -> Cookie:
    return Cookie(key=COOKIE, value="", max_age=0, expires=0, path="/", httponly=True, samesite="lax")
