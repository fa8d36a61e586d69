"""GET /v1/units: the unit tree."""

from __future__ import annotations

from services.reporting.api_docs import errors
from services.reporting.routes.dependencies import READER, Tree, v1_router
from services.reporting.schemas import UnitOut

router = v1_router()


@router.get("/units", dependencies=READER, response_model=list[UnitOut], summary="The unit tree", responses=errors(422))
async def units(tree: Tree) -> list[dict[str, object]]:
    """Every unit of the tree of day `tree` (default today) with its code, Vietnamese name, parent,
    validity and predecessors: the ended units whose events roll up into it (`whole: false` for
    units split among several, which count in the nearest unit containing all their successors)."""
    return tree.listing()
