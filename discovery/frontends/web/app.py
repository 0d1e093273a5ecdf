"""The review web app: FastAPI with server-rendered Jinja2 pages over one campaign's store."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from discovery.engine.campaign_directory import open_campaign
from discovery.frontends.web import api, downloads, pages
from discovery.frontends.web.links import MlflowLinks

log = logging.getLogger(__name__)

HERE = Path(__file__).parent

# Inline scripts are refused (the pages have none), so injected markup could not run even if
# escaping failed somewhere. plotly.js's WebGL code compiles functions at run time, hence
# 'unsafe-eval'; it also styles elements inline.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
)


# Characters of a refused request's input echoed back in its 422 response.
MAX_ECHO = 200


def _short(value: Any) -> Any:
    """`value`, or its first MAX_ECHO characters with a note, so an error stays small."""
    if isinstance(value, str | bytes):
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
    elif isinstance(value, int | float | bool) or value is None:
        return value
    else:
        text = json.dumps(jsonable_encoder(value), default=str)
        if len(text) <= MAX_ECHO:
            return value
    if len(text) <= MAX_ECHO:
        return text
    return f"{text[:MAX_ECHO]}... (truncated: {len(text)} characters)"


def _small_errors(errors: Sequence[Any]) -> list[Any]:
    out = []
    for error in errors:
        error = dict(error)
        if "input" in error:
            error["input"] = _short(error["input"])
        if "ctx" in error:
            error["ctx"] = {k: _short(v) for k, v in error["ctx"].items()}
        out.append(error)
    return out


def create_app(directory: str | Path, token: str, mlflow_url: str | None = None) -> FastAPI:
    """An app bound to the campaign in `directory`; `token` authorises write requests."""
    directory = Path(directory).resolve()
    camp = open_campaign(directory)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        camp.db.dispose()

    app = FastAPI(
        title=f"review: {camp.config.name}", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.camp = camp
    app.state.directory = directory
    app.state.token = token
    app.state.links = MlflowLinks(camp, mlflow_url)
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
    templates.env.globals["campaign_name"] = camp.config.name
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(downloads.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI echoes each refused input whole: a 5 MB comment would come back as 5 MB.
        errors = jsonable_encoder(_small_errors(exc.errors()))
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # A browser asking for a page gets a page; the API and scripts keep JSON errors.
        wants_html = "text/html" in request.headers.get("accept", "")
        if request.url.path.startswith("/api") or not wants_html:
            return await http_exception_handler(request, exc)
        return HTMLResponse(
            templates.get_template("error.html").render(
                request=request, status=exc.status_code, detail=exc.detail
            ),
            status_code=exc.status_code,
        )

    log.info("review app for %s (%s)", camp.config.name, directory)
    return app
