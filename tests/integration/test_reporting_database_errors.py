"""Without its tables the service answers 503 problem+json, not a bare 500 (real PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from services.reporting.app import create_app
from services.reporting.config import ReportingSettings
from tests.conftest import DATABASE_URL, unique
from tests.reporting_stack import READ

pytestmark = pytest.mark.integration


async def test_missing_schema_is_503_problem() -> None:
    settings = ReportingSettings(database_url=SecretStr(DATABASE_URL), database_schema=unique("absent"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            for path in ("/v1/snapshot?unit=my-hao", "/v1/indicators?unit=my-hao"):
                response = await client.get(path, headers=READ)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["retry-after"]
                assert response.json()["status"] == 503
