"""The write token: every request that changes the store must carry it.

The token travels in a header (`X-Discovery-Token`, or `Authorization: Bearer ...`), never in
a cookie, so another site open in the same browser cannot make a reviewer's browser send it
(a cross-site request cannot set custom headers without a CORS grant, which this app never
gives).
"""

from __future__ import annotations

import os
import secrets

from fastapi import HTTPException, Request

TOKEN_ENV = "DISCOVERY_TOKEN"
HEADER = "X-Discovery-Token"


def resolve_token(given: str | None = None) -> tuple[str, bool]:
    """(token, generated): the one given, else $DISCOVERY_TOKEN, else a fresh random one."""
    token = given or os.environ.get(TOKEN_ENV)
    if token:
        return token, False
    return secrets.token_urlsafe(24), True


def _presented(request: Request) -> str | None:
    token = request.headers.get(HEADER)
    if token:
        return token
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 without a token, 403 with a wrong one."""
    token = _presented(request)
    if token is None:
        raise HTTPException(
            401, "this action needs the review token", headers={"WWW-Authenticate": "Bearer"}
        )
    if not secrets.compare_digest(token.encode(), request.app.state.token.encode()):
        raise HTTPException(403, "wrong review token")
