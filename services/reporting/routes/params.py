"""Query parameters shared by the routes, with their limits and OpenAPI descriptions."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query
from pydantic import Field

from shared.events import EARLIEST_INSTANT, LATEST_INSTANT
from shared.units import Scope

UnitParam = Annotated[str, Query(description="Unit code", examples=["my-hao"])]
# Contract §4: days outside 1970-01-01..2999-12-31 are 422 naming the parameter. No fact lies
# outside them (the intake refuses such timestamps), and every window inside them can be computed
# (the end of 9999-12-31 could not: the next day does not exist).
EARLIEST_DAY, LATEST_DAY = EARLIEST_INSTANT.date(), LATEST_INSTANT.date()  # in Vietnam's time
Day = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
FromParam = Annotated[
    Day | None, Query(alias="from", description="First day, 1970-01-01..2999-12-31 (default: 1 January this year)")
]
ToParam = Annotated[
    Day | None, Query(alias="to", description="Last day, 1970-01-01..2999-12-31 (default: today, Asia/Ho_Chi_Minh)")
]
YearParam = Annotated[
    int | None,
    Query(
        ge=EARLIEST_DAY.year,
        le=LATEST_DAY.year,
        description="Calendar year, 1970..2999 (default: the current year)",
        examples=[2023],
    ),
]
ScopeParam = Annotated[Scope, Query(description="`subtree`: the unit and all its descendants; `self`: the unit only")]
TreeParam = Annotated[
    Day | None,
    Query(
        description="The unit tree as it stood that day, 1970-01-01..2999-12-31 (contract §1.1; default: today): "
        "which unit a code names, its subtree and what rolls up into it",
        examples=["2024-12-31"],
    ),
]
