"""RFC 9457 problem details, the body of every 4xx/5xx answer of the HTTP services."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    index: int
    field: str
    message: str


class Problem(BaseModel):
    """The problem+json body (OpenAPI schema of every error answer)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raised by routes; answered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        type_: str = "about:blank",
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(type=type_, title=title, status=status, detail=detail, errors=errors)
        self.headers = headers or {}


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = problem.model_dump(exclude_none=True)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, including FastAPI's own, as problem+json."""

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(index=0, field=".".join(str(p) for p in err["loc"][1:]) or "request", message=err["msg"])
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(Problem(title="Invalid request parameters", status=422, detail=detail, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            Problem(title=str(exc.detail), status=exc.status_code, detail=str(exc.detail)),
            dict(exc.headers) if exc.headers else None,
        )
