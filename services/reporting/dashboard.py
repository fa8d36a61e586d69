"""The IOC dashboard page: the HTML shell with its configuration (pure; figures come from the API)."""

from __future__ import annotations

import html
import json
from datetime import date
from functools import cache
from importlib import resources
from string import Template

from services.reporting.indicators import Window
from services.reporting.report import day_text, in_sentence, level_label

# Years offered by the year picker: the current one and a few before (plus the one shown).
YEARS_OFFERED = 6


@cache
def _template() -> Template:
    return Template(resources.files("services.reporting").joinpath("templates/dashboard.html").read_text("utf-8"))


def render_dashboard(
    *,
    unit: str,
    unit_name: str,
    year: int,
    current_year: int,
    window: Window,
    token: str | None,
    tree: date | None = None,
) -> str:
    """The page for (unit, year) in the tree of day `tree` (None: today's, as the API's default).
    `token` is embedded only in development (the well-known dev token)."""
    config = {
        "unit": unit,
        "tree": None if tree is None else tree.isoformat(),
        "unit_name": unit_name,
        "year": year,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "token": token,
        "own_level": level_label(unit_name),
    }
    # "</" cannot end the script element early once escaped; JSON stays valid.
    config_json = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    years = sorted({year, *range(current_year - YEARS_OFFERED + 1, current_year + 1)}, reverse=True)
    options = "".join(f'<option value="{y}"{" selected" if y == year else ""}>{y}</option>' for y in years)
    return _template().substitute(
        unit=html.escape(unit),
        unit_name=html.escape(unit_name),
        year=year,
        period=f"Từ {day_text(window.start)} đến {day_text(window.end)}",
        year_options=options,
        scope_text=html.escape(f"{in_sentence(unit_name)} và các đơn vị trực thuộc"),
        config=config_json,
    )
