"""GET /v1/units: the unit tree."""

from __future__ import annotations

from services.reporting.routes.dependencies import READER, Tree, v1_router
from services.reporting.schemas import UnitOut

router = v1_router()


@router.get("/units", dependencies=READER, response_model=list[UnitOut], summary="The unit tree")
async def units(tree: Tree) -> list[dict[str, str | None]]:
    """Code, Vietnamese name and parent code of every unit (the tree configured by UNITS_FILE)."""
    return tree.as_list()
