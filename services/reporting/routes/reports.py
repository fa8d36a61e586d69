"""GET /v1/reports/annual: the annual report sections in Vietnamese (Markdown, HTML or DOCX)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Response
from fastapi.responses import HTMLResponse

from services.infra.security_headers import script_hash
from services.reporting.api_docs import REPORT_EXCERPT, errors
from services.reporting.report import HTML_STYLE, to_html, to_markdown
from services.reporting.report_docx import DOCX_MEDIA_TYPE, to_docx
from services.reporting.routes.dependencies import READER, Service, Tree, v1_router
from services.reporting.routes.params import Day, UnitParam, YearParam
from shared.units import Scope

router = v1_router()

# The HTML report: a document of its own, with nothing to run and its one inline style allowed by
# hash (a hash source serves a <style> as it serves a <script>). The dashboard and /docs load
# everything from /assets and get the middleware's HTML policy.
REPORT_HTML_POLICY = (
    f"default-src 'none'; style-src {script_hash(HTML_STYLE)}; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


@router.get(
    "/reports/annual",
    dependencies=READER,
    response_model=None,
    summary="The annual report sections in Vietnamese",
    responses={
        200: {
            "description": "Sections 4.1, 4.4 and 9 of the annual report",
            "content": {
                "text/markdown": {"schema": {"type": "string"}, "example": REPORT_EXCERPT},
                "text/html": {"schema": {"type": "string"}},
                DOCX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **errors(404, 422),
    },
)
async def annual_report(
    svc: Service,
    tree: Tree,
    unit: UnitParam,
    year: YearParam = None,
    end: Annotated[
        Day | None, Query(alias="to", description="Last day, in `year` (default: 31 December or today)")
    ] = None,
    format: Annotated[Literal["md", "html", "docx"], Query(description="Output format")] = "md",
    scope: Annotated[
        Scope, Query(description="Scope of sections 4.1 and 4.4 (default `self`, like the town's own figures)")
    ] = "self",
) -> Response:
    """E-documents (4.1), procedures and dossiers (4.4) and the table by child unit (9), in Vietnamese.

    Figures in Vietnamese format (1.763; 81,1%), from the same queries as /v1/indicators and
    /v1/indicators/breakdown. `docx` comes as an attachment.
    """
    report = await svc.annual_report(tree, unit, year, end, scope)
    if format == "docx":
        return Response(
            to_docx(report),
            media_type=DOCX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{report.filename_stem}.docx"'},
        )
    if format == "html":
        return HTMLResponse(to_html(report), headers={"Content-Security-Policy": REPORT_HTML_POLICY})
    return Response(to_markdown(report), media_type="text/markdown; charset=utf-8")
