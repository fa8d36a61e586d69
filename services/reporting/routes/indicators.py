"""GET /v1/indicators, /v1/indicators/breakdown and /v1/indicators/monthly."""

from __future__ import annotations

from typing import Any

from services.reporting.api_docs import breakdown_example, errors, monthly_example, ok
from services.reporting.routes.dependencies import READER, Service, Tree, v1_router
from services.reporting.routes.params import FromParam, ScopeParam, ToParam, UnitParam, YearParam
from services.reporting.schemas import MY_HAO_EXAMPLE, Breakdown, Indicators, Monthly

router = v1_router()


@router.get(
    "/indicators",
    dependencies=READER,
    response_model=None,
    summary="Indicators of a unit over a window",
    responses={**ok(Indicators, MY_HAO_EXAMPLE), **errors(404, 422)},
)
async def indicators(
    svc: Service,
    tree: Tree,
    unit: UnitParam,
    start: FromParam = None,
    end: ToParam = None,
    scope: ScopeParam = "subtree",
) -> dict[str, Any]:
    """Every figure and rate of contract §5 for the unit, its scope and the days [from, to].

    `as_of` is the end of day `to`, or now if that is earlier; in-progress and procedure figures
    are "at as_of", the others count facts whose day lies in the window.
    """
    return await svc.indicators(tree, unit, scope, start, end)


@router.get(
    "/indicators/breakdown",
    dependencies=READER,
    response_model=None,
    summary="Indicators by direct child unit",
    responses={**ok(Breakdown, breakdown_example()), **errors(404, 422)},
)
async def breakdown(
    svc: Service, tree: Tree, unit: UnitParam, start: FromParam = None, end: ToParam = None
) -> dict[str, Any]:
    """One row per direct child (its whole subtree), plus a row for the unit itself (scope=self)."""
    return await svc.breakdown(tree, unit, start, end)


@router.get(
    "/indicators/monthly",
    dependencies=READER,
    response_model=None,
    summary="Monthly trend of a year",
    responses={**ok(Monthly, monthly_example()), **errors(404, 422)},
)
async def monthly(
    svc: Service, tree: Tree, unit: UnitParam, year: YearParam = None, scope: ScopeParam = "subtree"
) -> dict[str, Any]:
    """Window figures (received, resolved, …, documents) of each month of the year, from the daily counts.

    Months after today have null figures. Point-in-time figures (in progress, procedures) are
    not monthly figures and are absent.
    """
    return await svc.monthly(tree, unit, scope, year)
