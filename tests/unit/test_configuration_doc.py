"""docs/configuration.md names every environment variable of the services' settings objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.aggregator.config import AggregatorSettings
from services.infra.http_timeouts import HttpTimeouts
from services.intake.config import IntakeSettings
from services.reporting.config import ReportingSettings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")


def _variables(settings: type[BaseSettings]) -> list[str]:
    names = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.append(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.append(str(alias.choices[0]).upper())
        else:
            names.append(name.upper())
    return names


@pytest.mark.parametrize("settings", [IntakeSettings, AggregatorSettings, ReportingSettings, HttpTimeouts])
def test_every_variable_is_documented(settings: type[BaseSettings]) -> None:
    missing = [name for name in _variables(settings) if f"`{name}`" not in DOC]
    assert missing == [], f"{settings.__name__}: {missing} missing from docs/configuration.md"
