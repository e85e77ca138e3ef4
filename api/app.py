"""The HTTP API's application factory: `uvicorn --factory api.app:create_app`, which
`socialpost api` runs. It assembles the routers, the body cap and the problem+json error
handling; each router is a module of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import settings
from api import bodycap, health, hooks, metrics, problems

API_VERSION = "1"
DESCRIPTION = """Publish social-media posts and read what happened to them.

Every `/v1` endpoint needs `Authorization: Bearer <token>` (`socialpost tokens create`).
Errors are RFC 9457 `application/problem+json` documents; invalid input is `422` with one
entry in `errors` per field and rule."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown (after the requests in flight are answered), close this process's
    database connections instead of leaving PostgreSQL to notice them gone."""
    yield
    from db.pool import close_pools

    close_pools()


def create_app() -> FastAPI:
    """A new application (settings are checked here: a malformed one stops start-up)."""
    config = settings.check()
    app = FastAPI(title="social-posting", version=API_VERSION, description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
                  lifespan=lifespan)
    problems.install(app)
    app.include_router(health.router)
    for router in _v1_routers():
        app.include_router(router, prefix="/v1")
    app.include_router(hooks.router)
    app.include_router(metrics.router)
    app.add_middleware(bodycap.BodyCap, limit=config.api_max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_media_types(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _v1_routers() -> list[Any]:
    """The /v1 resources."""
    from api import campaigns, posts, tokens, users, webhooks

    return [posts.router, campaigns.router, users.router, webhooks.router, tokens.router]


def problem_media_types(doc: dict[str, Any]) -> dict[str, Any]:
    """Error answers are application/problem+json: move the schema FastAPI files under
    application/json, and drop its own validation-error schemas (we answer ProblemDoc)."""
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                if not code.isdigit() or int(code) < 400 or "application/json" not in content:
                    continue
                ref = content["application/json"].get("schema", {}).get("$ref", "")
                if ref.endswith(("/ProblemDoc", "/HTTPValidationError")):
                    del content["application/json"]
                    content[problems.MEDIA_TYPE] = {
                        "schema": {"$ref": "#/components/schemas/ProblemDoc"}}
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc
