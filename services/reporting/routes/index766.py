"""GET /v1/index766: the Decision 766 index."""

from __future__ import annotations

from typing import Any

from services.reporting.api_docs import errors, index766_example, ok
from services.reporting.routes.dependencies import READER, Service, Tree, v1_router
from services.reporting.routes.params import FromParam, ToParam, UnitParam
from services.reporting.schemas import Index766Body

router = v1_router()


@router.get(
    "/index766",
    dependencies=READER,
    response_model=None,
    summary="The Decision 766 index of a unit over a window",
    responses={**ok(Index766Body, index766_example()), **errors(404, 422)},
)
async def index766(
    svc: Service, tree: Tree, unit: UnitParam, start: FromParam = None, end: ToParam = None
) -> dict[str, Any]:
    """The components of Decision 766/QĐ-TTg with their numerators and denominators (contract §5.1).

    Over the unit's subtree, for the days [from, to] and `as_of` as for /v1/indicators. Components
    without an input have `computed: false`; `score` sums the computed ones and
    `computable_points` their points; `ranking` orders the unit's direct children by score.
    """
    return await svc.index766(tree, unit, start, end)
