"""GET /healthz (the process is up), /readyz (PostgreSQL is reachable) and the offline /docs page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from services.infra.http_problems import ProblemError
from services.reporting.api_docs import errors
from services.reporting.errors import DatabaseUnavailable
from services.reporting.routes.dependencies import Service

STATIC_DIR = Path(__file__).parents[1] / "static"

router = APIRouter()


@router.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="PostgreSQL is reachable", responses=errors(503))
async def readyz(svc: Service) -> dict[str, str]:
    """PostgreSQL is reachable and the schema exists."""
    try:
        await svc.ready()
    except DatabaseUnavailable as exc:
        raise ProblemError(503, "Not ready", str(exc)) from exc
    return {"status": "ready"}
