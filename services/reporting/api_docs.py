"""OpenAPI of the reporting service: error answers as problem+json, examples (no behaviour here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.infra.http_problems import PROBLEM_JSON, Problem
from services.reporting.index766 import INPUTS, load_formula, render_index, score
from services.reporting.indicators import DOCUMENT_FIGURES, MONTHLY_DOSSIER_FIGURES
from services.reporting.schemas import MY_HAO_EXAMPLE


def problem_example(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


_PROBLEM_EXAMPLES = {
    401: ("Missing or unknown token", problem_example(401, "Unauthorized", "missing or unknown bearer token")),
    404: ("Unknown unit", problem_example(404, "Unknown unit", "no unit with code 'no-such-unit'")),
    422: (
        "Malformed date or number, `from` after `to`, or a year not begun",
        {
            **problem_example(422, "Invalid request parameters", "from: Input should be a valid date"),
            "errors": [{"index": 0, "field": "from", "message": "Input should be a valid date"}],
        },
    ),
    503: ("Database unavailable", problem_example(503, "Service unavailable", "database not reachable")),
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "model": Problem,
            "description": _PROBLEM_EXAMPLES[status][0],
            "content": {"application/problem+json": {"example": _PROBLEM_EXAMPLES[status][1]}},
        }
        for status in statuses
    }


def ok(model: type[Any], example: Any, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """A 200 answer documented by `model` (routes return plain dicts: no validation cost per request)."""
    return {200: {"model": model, "description": "OK", "content": {"application/json": {"example": example}}, **extra}}


def problem_only_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI puts error models under the route's media type; ours answer application/problem+json only."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for item in schema["paths"].values():
            for operation in item.values():
                for status, response in operation["responses"].items():
                    content = response.get("content", {})
                    if status.startswith(("4", "5")):
                        problem = content.get(PROBLEM_JSON, {})
                        problem["schema"] = {"$ref": "#/components/schemas/Problem"}
                        response["content"] = {PROBLEM_JSON: problem}
                    elif len(content) > 1 and content.get("application/json") == {"schema": {}}:
                        del content["application/json"]  # the default media type of a route answering others
        text = json.dumps(schema)
        for unused in ("HTTPValidationError", "ValidationError"):
            if f'/{unused}"' not in text:
                schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    return openapi


REPORT_EXCERPT = (
    "## 4.4. Kết quả giải quyết TTHC\n\n"
    "- Tổng số thủ tục hành chính được đưa vào phần mềm một cửa điện tử là 226 thủ tục, …\n"
    "    + Bộ phận Một cửa thị xã Mỹ Hào đã tiếp nhận: 1.763 hồ sơ (trong đó: Số hồ sơ tiếp nhận trực tuyến: "
    "1.704 hồ sơ; số hồ sơ tiếp nhận trực tiếp: 59 hồ sơ). …\n"
)


def breakdown_example() -> dict[str, Any]:
    figures = {k: MY_HAO_EXAMPLE[k] for k in ("dossiers", "documents", "procedures", "rates")}
    return {
        "unit": "my-hao",
        "from": "2023-01-01",
        "to": "2023-11-27",
        "as_of": "2023-11-27T23:59:59.999999+07:00",
        "rows": [{"unit": "my-hao", "name": "Thị xã Mỹ Hào", "scope": "self", **figures}],
        "freshness": MY_HAO_EXAMPLE["freshness"],
    }


def monthly_example() -> dict[str, Any]:
    dossiers = dict.fromkeys(MONTHLY_DOSSIER_FIGURES, 0) | {"received": 160, "received_online": 155, "resolved": 150}
    docs = dict.fromkeys(DOCUMENT_FIGURES, 0) | {"incoming": 720, "outgoing": 1150}
    return {
        "unit": "my-hao",
        "scope": "subtree",
        "year": 2023,
        "as_of": "2023-12-31T23:59:59.999999+07:00",
        "months": [
            {"month": "2023-01", "from": "2023-01-01", "to": "2023-01-31", "dossiers": dossiers, "documents": docs},
            "… one row per month, 12 in all",
        ],
        "freshness": MY_HAO_EXAMPLE["freshness"],
    }


def index766_example() -> dict[str, Any]:
    """A body scored by the shipped formula from the figures of the Mỹ Hào example."""
    dossiers = MY_HAO_EXAMPLE["dossiers"]
    inputs = dict.fromkeys(INPUTS, 0) | {name: dossiers[name] for name in INPUTS if name in dossiers}
    inputs |= {"handled": 1763, "handled_on_time": 1763, "digitized_complete": 1300, "synced": 1700}
    inputs |= {"procedures": 226, "procedures_online": 206, "procedures_online_used": 150}
    return {
        "unit": "my-hao",
        "from": "2023-01-01",
        "to": "2023-11-27",
        "as_of": "2023-11-27T23:59:59.999999+07:00",
        **render_index(score(load_formula(), inputs)),
        "ranking": [{"unit": "phuong-ban-yen-nhan", "name": "Phường Bần Yên Nhân", "score": 61.5}],
        "freshness": MY_HAO_EXAMPLE["freshness"],
    }
