"""Errors as RFC 9457 `application/problem+json`: one shape for every failure, with one
entry per field and rule, so a client fixes every mistake of a request in one go.

`Problem` is raised by the endpoints; the handlers installed by `install()` turn it, the
framework's own errors (validation, unknown route, wrong method) and an unreachable
database into problem documents. `responses()` declares them in the OpenAPI document.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from db.errors import DbError, InvalidInput, NotFound
from settings import SettingsError
from tasks.validation import InvalidRequest, PostIdConflict

log = logging.getLogger("socialpost.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:socialpost:problem:"


class FieldError(BaseModel):
    """One field and the rule it broke."""

    field: str = Field(description="the field, e.g. `content`, `media_urls[0]`, `limit`")
    detail: str = Field(description="the rule it broke")


class ProblemDoc(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="the request's path")
    errors: list[FieldError] | None = Field(
        None, description="for invalid input: one entry per field and rule")


class Problem(Exception):
    """An answer other than success; `errors` are (field, detail) pairs."""

    def __init__(self, status: int, kind: str, detail: str | None = None, *,
                 title: str | None = None, errors: Sequence[tuple[str, str]] = (),
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or kind)
        self.status = status
        self.kind = kind
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def invalid(problems: Iterable[str], status: int = 422) -> Problem:
    """422 (or `status`) from our validators' "field: rule" messages (tasks.validation,
    db.errors): one entry per field and rule."""
    errors = []
    for text in problems:
        name, sep, rule = text.partition(":")
        errors.append((name.strip(), rule.strip()) if sep else ("body", text))
    if status == 409:
        return Problem(409, "conflict", "; ".join(rule for _, rule in errors),
                       title="Conflict", errors=errors)
    return Problem(status, "invalid-request", "the request has invalid fields; see errors",
                   title="Invalid request", errors=errors)


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", f"no {what}", title="Not found")


def render(problem: Problem, path: str) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + problem.kind, "title": problem.title, "status": problem.status,
        "instance": path,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = [{"field": f, "detail": d} for f, d in problem.errors]
    return JSONResponse(body, status_code=problem.status, media_type=MEDIA_TYPE,
                        headers=problem.headers or None)


def _field_name(loc: Sequence[Any]) -> str:
    """('body', 'media_urls', 0) -> 'media_urls[0]'; ('query', 'limit') -> 'limit'."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    if not parts:
        return str(loc[0]) if loc else "body"
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _rule(error: Mapping[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") == "json_invalid":
        return "must be a JSON document"
    return str(error.get("msg", "is invalid"))


def install(app: FastAPI) -> None:
    """Every error the app answers becomes a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return render(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [(_field_name(e.get("loc", ())), _rule(e)) for e in exc.errors()]
        return render(Problem(422, "invalid-request", "the request has invalid fields; "
                              "see errors", title="Invalid request", errors=errors),
                      request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON (or not UTF-8)
            return render(invalid(["body: must be a UTF-8 JSON document"]), request.url.path)
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(app, request))
        return render(Problem(exc.status_code, kind, detail, headers=headers),
                      request.url.path)

    @app.exception_handler(InvalidRequest)
    async def _invalid_request(request: Request, exc: InvalidRequest) -> JSONResponse:
        status = 409 if isinstance(exc, PostIdConflict) else 422
        return render(invalid(exc.problems, status), request.url.path)

    @app.exception_handler(DbError)
    async def _db(request: Request, exc: DbError) -> JSONResponse:
        # db.errors messages name the field or setting and never hold a secret.
        if isinstance(exc, InvalidInput):
            problem = invalid([f"{exc.field}: {exc.rule}"])
        elif isinstance(exc, NotFound):
            problem = Problem(404, "not-found", str(exc), title="Not found")
        else:
            log.error("%s %s: %s", request.method, request.url.path, exc)
            problem = Problem(503, "unavailable", str(exc))
        return render(problem, request.url.path)

    @app.exception_handler(SettingsError)
    async def _settings(request: Request, exc: SettingsError) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return render(Problem(503, "not-configured", str(exc)), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        import psycopg
        import psycopg_pool

        if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
            log.warning("%s %s: database unavailable (%s)", request.method, request.url.path,
                        type(exc).__name__)
            return render(Problem(503, "unavailable", "the database is unreachable; retry "
                                  "later", headers={"Retry-After": "5"}), request.url.path)
        # The type and where it came from, not its text: that may quote a request's fields.
        where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
        log.error("%s %s: unexpected %s at\n%s", request.method, request.url.path,
                  type(exc).__name__, where)
        return render(Problem(500, "internal", "an unexpected error; it has been logged"),
                      request.url.path)


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only one
    route's, and a path may be served by several)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


DESCRIPTIONS = {
    400: "Bad request",
    401: "No token, or an unknown or revoked one",
    403: "The token may not do this (a user outside its scope, or admin only)",
    404: "No such resource (or not one of the token's users)",
    409: "Conflicts with the resource's state or an earlier request",
    413: "Request body over SOCIALPOST_API_MAX_BODY_BYTES (any method but GET and HEAD)",
    422: "Invalid input: one entry per field and rule",
    502: "No provider gave an answer to use (each one's answer is in detail)",
    503: "PostgreSQL or Redis unreachable",
}
# What every endpoint behind a token may answer besides its own codes.
AUTHED = (401, 422, 503)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these problem statuses (api.app moves their schema under
    application/problem+json)."""
    return {code: {"model": ProblemDoc, "description": DESCRIPTIONS.get(code, "Error")}
            for code in sorted(set(codes))}
