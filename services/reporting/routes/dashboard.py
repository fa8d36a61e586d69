"""GET /dashboard: the IOC page (public: it holds no figures, it reads them from /v1)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.reporting.api_docs import errors
from services.reporting.dashboard import render_dashboard
from services.reporting.routes.dependencies import Service, Tree
from services.reporting.routes.params import UnitParam, YearParam

router = APIRouter()


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    summary="The IOC screen (Vietnamese), live",
    responses={
        200: {"description": "The page; its figures come from /v1 with the reader token"},
        **errors(404, 422),
    },
)
async def dashboard(
    request: Request, svc: Service, tree: Tree, unit: UnitParam, year: YearParam = None
) -> HTMLResponse:
    """The IOC page for a unit and year: headline figures, table and charts by child unit, monthly trend.

    It updates itself from /v1/stream. The page holds no figures, so it is public; it reads the
    API with `?access_token=` from its own URL or, in development, with the development token.
    Every asset is served by this service (no external network).
    """
    view = svc.dashboard(tree, unit, year)
    page = render_dashboard(
        unit=view.unit,
        unit_name=view.unit_name,
        year=view.year,
        current_year=view.current_year,
        window=view.window,
        token=request.app.state.page_token,
        tree=view.tree_day,
    )
    # Everything from this origin only (the middleware's policy): the page works without any
    # external network.
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
