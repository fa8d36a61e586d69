"""What the routes take from the composition root: the use cases, the unit tree of the request,
the reader token checks (app.state is filled by app.py's lifespan and create_app).

Dependencies are coroutines: FastAPI runs plain functions in a thread pool, a thread hop per
dependency and request that costs more than the snapshot itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from services.infra.http_problems import ProblemError
from services.reporting.api_docs import errors
from services.reporting.routes.params import TreeParam
from services.reporting.service import ReportingService
from shared.tokens import TokenRegistry
from shared.units import UnitRegistry, UnitTree


def v1_router() -> APIRouter:
    """A router of /v1 reads (the prefix on the router that holds the routes, so the route
    templates that label the metrics are the full paths)."""
    return APIRouter(prefix="/v1", responses=errors(401, 503))


async def reporting_service(request: Request) -> ReportingService:
    svc: ReportingService = request.app.state.service
    return svc


async def unit_tree(request: Request, tree: TreeParam = None) -> UnitTree:
    """The unit tree a request reads with: the registry as it stood on `tree`, or today (the
    service's clock). Trees are built once per period of the registry and cached."""
    registry: UnitRegistry = request.app.state.registry
    if tree is None:
        svc: ReportingService = request.app.state.service
        tree = svc.today()
    return registry.tree(tree)


Service = Annotated[ReportingService, Depends(reporting_service)]
Tree = Annotated[UnitTree, Depends(unit_tree)]

_bearer = HTTPBearer(auto_error=False, description="Reader token: `Authorization: Bearer <token>`")
_query_token = APIKeyQuery(
    name="access_token",
    auto_error=False,
    description="Reader token in the query, for EventSource (which cannot set headers); /v1/stream only",
)


def _authenticate(connection: HTTPConnection, authorization: str | None) -> None:
    tokens: TokenRegistry = connection.app.state.tokens
    if tokens.authenticate(authorization) is None:
        raise ProblemError(
            401, "Unauthorized", "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


class ReaderToken(HTTPBearer):
    """The bearer scheme (documented in OpenAPI) that also checks the token: one dependency level."""

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        _authenticate(request, request.headers.get("authorization"))
        return None


require_reader = ReaderToken(auto_error=False, scheme_name="HTTPBearer", description=_bearer.model.description)
READER = [Depends(require_reader)]


async def require_stream_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[str | None, Depends(_query_token)],
) -> None:
    """The reader token from the Authorization header or, for EventSource, `?access_token=`."""
    token = credentials.credentials if credentials else access_token
    _authenticate(request, f"Bearer {token}" if token else None)
