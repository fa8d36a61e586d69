"""The administrative unit tree (province -> district/town -> commune/ward, any depth).

Configuration read once at start-up from a JSON file: a list of {code, name, parent}.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

DEFAULT_UNITS_RESOURCE = "units-my-hao.json"


class Unit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    name: str = Field(min_length=1)
    parent: str | None


_units_adapter = TypeAdapter(list[Unit])


class UnitTreeError(ValueError):
    """The unit configuration is not a tree."""


@dataclass(frozen=True)
class UnitTree:
    units: dict[str, Unit]
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_units(cls, units: Iterable[Unit]) -> UnitTree:
        by_code: dict[str, Unit] = {}
        for unit in units:
            if unit.code in by_code:
                raise UnitTreeError(f"unit {unit.code!r} is listed twice")
            by_code[unit.code] = unit
        children: dict[str, list[str]] = {code: [] for code in by_code}
        for unit in by_code.values():
            if unit.parent is None:
                continue
            if unit.parent not in by_code:
                raise UnitTreeError(f"unit {unit.code!r} names an unknown parent {unit.parent!r}")
            children[unit.parent].append(unit.code)
        tree = cls(by_code, {code: tuple(kids) for code, kids in children.items()})
        for code in by_code:  # a cycle would make subtree() loop forever
            seen = {code}
            parent = by_code[code].parent
            while parent is not None:
                if parent in seen:
                    raise UnitTreeError(f"unit {code!r} is its own ancestor")
                seen.add(parent)
                parent = by_code[parent].parent
        return tree

    @classmethod
    def from_json(cls, raw: bytes | str) -> UnitTree:
        return cls.from_units(_units_adapter.validate_json(raw))

    @classmethod
    def load(cls, path: Path | None) -> UnitTree:
        """The tree in `path`, or the Mỹ Hào tree shipped with the project."""
        if path is None:
            raw = resources.files("shared.data").joinpath(DEFAULT_UNITS_RESOURCE).read_bytes()
        else:
            raw = path.read_bytes()
        return cls.from_json(raw)

    def __contains__(self, code: object) -> bool:
        return code in self.units

    def subtree(self, code: str) -> list[str]:
        """The unit and all its descendants, depth first, the unit itself first."""
        result: list[str] = []
        stack = [code]
        while stack:
            current = stack.pop()
            result.append(current)
            stack.extend(reversed(self.children[current]))
        return result

    def child_containing(self, root: str, code: str) -> str | None:
        """The direct child of `root` whose subtree holds `code` (None for root itself or outside)."""
        current: str | None = code
        while current is not None:
            parent = self.units[current].parent
            if parent == root:
                return current
            current = parent
        return None

    def as_list(self) -> list[dict[str, str | None]]:
        return [json.loads(unit.model_dump_json()) for unit in self.units.values()]
