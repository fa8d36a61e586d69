"""The dated registry of administrative units (contract §1.1) and the unit tree as it stood on a day.

The registry (`UNITS_FILE`) is a JSON list of entries
`{"code", "name", "parent", "valid_from", "valid_to", "successors", "organs", "note"}`:
`valid_from`/`valid_to` are local dates (`valid_to` is the first day the unit no longer exists; null or
absent = open-ended); `successors` (`[{"code", "whole"}]`, only on a unit that ends) are the units that
took over its area on `valid_to`; `organs` are the organ codes (`MaDinhDanhDV`) and names (`DonViXuLy`)
upstream systems use for the unit; `note` is free text for the people who keep the file (ignored).
A v1 file (only code, name, parent) means units valid forever.

API
- `UnitRegistry.load(path | None)` (None: the shipped Mỹ Hào tree), `UnitRegistry.from_json(raw)`,
  `UnitRegistry(entries)`; invalid registries raise `UnitRegistryError` (alias `UnitTreeError`) whose
  message names every offending entry by position, code and dates.
- `registry.resolve(code, day) -> UnitEntry | None`: the entry with that code valid on that local day.
  Indexed at load (the aggregator calls it per event): a dict lookup and a date comparison per entry of
  that code (one or two), no allocation.
- `registry.resolve_organ(organ, day) -> UnitEntry | None`: the unit valid that day that lists the organ.
- `registry.entry(stored_key) -> UnitEntry`, `stored_key in registry`; `registry.entries`;
  `registry.boundaries` (the days the tree changes; empty for a v1 file, `registry.dated` False);
  `parent_entry(e)`, `successor_entries(e)`, `predecessor_entries(e)`; `UnitRegistry.load_shipped(name)`.
- `registry.tree(day) -> UnitTree`: the tree as it stood that day, built once per period between two
  boundaries and cached (every day of a period has the same tree); `registry.today()`.
- Each `UnitEntry` has `key`, `code`, `name`, `parent`, `valid_from`, `valid_to`, `successors`, `organs`.
- `UnitTree`: `units` (code -> entry), `children`, `roots`, `subtree(code)`, `in`, `as_list()` (v1 shape),
  `listing()` (the `/v1/units` body), `stored_keys(code, scope)`, `extra_rows(code)`,
  `predecessors(code)`, `home(stored_key)`, `unplaced`; `UnitTree.load`/`from_json`/`from_units` give
  today's tree of a registry.

Stored key: what the aggregator writes as `unit` in its counter tables for an entry: the code when
`valid_from` is null, else `code@YYYY-MM-DD` (valid_from). A v1 registry keeps plain codes.

Validation at load (every rule of §1.1; all problems are reported together):
entries of one code never overlap in time; `valid_from` < `valid_to`; the parent is one entry valid on
every day the child is (a unit whose parent changes is two entries); successors only on units that end,
each valid on the ended unit's `valid_to`, either one whole successor or several partial ones, none
twice; no unit is its own ancestor; one normalized organ never names two units valid on the same day.
Successor chains cannot loop: a successor is valid on its predecessor's `valid_to`, so it ends later.
Organs are matched after Unicode NFC, trimming, collapsing inner whitespace and ignoring case.

Roll-up in a tree T (the project's reading of §1.1 where the contract is silent). The "home" of an
entry E is the unit of T whose subtree counts E's events:
- E valid on T: E itself.
- E ended on or before T: the home of its single whole successor; when it was split (several partial
  successors), the nearest common ancestor-or-self in T of its successors' homes ("the nearest unit of T
  that contains all of its successors"); without successors, its parent's home.
- E created after T: it has no place in T, but a root's totals must be all the events of its area, so it
  maps backward: the nearest common ancestor-or-self in T of the homes of its predecessors (the entries
  naming it as a successor), or its parent's home when it has none.
An entry may have no home: an ended root without successors (its area left the registry), a split
whose successors sit under different roots. Missing homes are left out of a common ancestor; an entry
without a home counts in no unit of T and is listed in `tree.unplaced`.

Groups: an entry merged whole into U, transitively, before T belongs to U's group: `stored_keys(U,
"self")` is U's key plus theirs. Every other entry not valid on T (not merged whole into another before
T) heads an extra row at its home, holding its own key and those merged whole into it: `split` (ended,
split among several successors), `dissolved` (ended without successors) or `successor` (created after
T). The
breakdown of U = its self row + one row per child (subtree keys) + its extra rows, and their keys are
exactly `stored_keys(U, "subtree")`, so every total adds up. `predecessors(U)` lists the ended entries
whose events roll up into U: its group (`whole: true`) and the members of its split and dissolved
rows (`whole: false`).
"""

from __future__ import annotations

import json
import unicodedata
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.timezone import local_day

DEFAULT_UNITS_RESOURCE = "units-my-hao.json"
HUNG_YEN_UNITS_RESOURCE = "units-hung-yen.json"
CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

Scope = Literal["self", "subtree"]
RowKind = Literal["split", "dissolved", "successor"]
_ROW_ORDER: dict[RowKind, int] = {"split": 0, "dissolved": 1, "successor": 2}


class UnitRegistryError(ValueError):
    """The registry breaks a rule of the contract; `problems` name each offending entry."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


UnitTreeError = UnitRegistryError  # the v1 name, kept for callers


def normalize_organ(text: str) -> str:
    """The form organs are compared in: NFC, trimmed, inner whitespace collapsed, case ignored."""
    collapsed = " ".join(unicodedata.normalize("NFC", text).split())
    return unicodedata.normalize("NFC", collapsed.casefold())


class Successor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    code: str = Field(pattern=CODE_PATTERN)
    whole: bool


class UnitEntry(BaseModel):
    """One unit over the days it exists (a code reused for another unit is another entry)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    parent: str | None
    valid_from: date | None = None
    valid_to: date | None = None
    successors: tuple[Successor, ...] = ()
    organs: tuple[str, ...] = ()
    note: str | None = None

    @cached_property
    def key(self) -> str:
        """The unit key stored in the counter tables."""
        return self.code if self.valid_from is None else f"{self.code}@{self.valid_from.isoformat()}"

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day < self.valid_to)

    def overlaps(self, other: UnitEntry) -> bool:
        return (self.valid_from is None or other.valid_to is None or self.valid_from < other.valid_to) and (
            other.valid_from is None or self.valid_to is None or other.valid_from < self.valid_to
        )

    def covers(self, other: UnitEntry) -> bool:
        """Whether this entry is valid on every day `other` is."""
        starts = self.valid_from is None or (other.valid_from is not None and self.valid_from <= other.valid_from)
        ends = self.valid_to is None or (other.valid_to is not None and other.valid_to <= self.valid_to)
        return starts and ends


Unit = UnitEntry  # the v1 name, kept for callers

_entries_adapter = TypeAdapter(list[UnitEntry])


@dataclass(frozen=True)
class ExtraRow:
    """Figures counted in a unit's subtree but in none of its children nor in its self keys."""

    entry: UnitEntry  # the row's head: the split, dissolved or later unit
    kind: RowKind
    keys: tuple[str, ...]  # the head's key and those of the entries merged whole into it

    @property
    def split(self) -> bool:
        return self.kind == "split"


@dataclass(frozen=True)
class Predecessor:
    entry: UnitEntry
    whole: bool


def _day(value: date | None) -> str:
    return "null" if value is None else value.isoformat()


def _label(index: int, entry: UnitEntry) -> str:
    return f"entry {index} (code {entry.code!r}, valid_from {_day(entry.valid_from)}, valid_to {_day(entry.valid_to)})"


class UnitRegistry:
    """The validated entries and their indexes; trees per day are built on demand and cached."""

    def __init__(self, entries: Iterable[UnitEntry]) -> None:
        self.entries: tuple[UnitEntry, ...] = tuple(entries)
        self._labels = [_label(i, e) for i, e in enumerate(self.entries)]
        self._normalized = [tuple(dict.fromkeys(normalize_organ(o) for o in e.organs)) for e in self.entries]
        self._check_entries()
        self._by_code = self._index_codes()
        # resolve() runs per event: plain (start, end, entry) tuples avoid attribute lookups on the model.
        self._spans = {
            code: tuple((e.valid_from or date.min, e.valid_to or date.max, e) for e in found)
            for code, found in self._by_code.items()
        }
        self._by_key = {e.key: e for e in self.entries}
        self._index = {e.key: i for i, e in enumerate(self.entries)}
        self._parents, self._successors = self._link()
        self._check_ancestry()
        self._organs = self._index_organs()
        predecessors: dict[str, list[UnitEntry]] = defaultdict(list)
        for entry in self.entries:
            for successor in self._successors[entry.key]:
                predecessors[successor.key].append(entry)
        self._predecessors = {key: tuple(found) for key, found in predecessors.items()}
        days = {d for e in self.entries for d in (e.valid_from, e.valid_to) if d is not None}
        self.boundaries: tuple[date, ...] = tuple(sorted(days))
        self._trees: dict[int, UnitTree] = {}

    # -- loading

    @classmethod
    def from_json(cls, raw: bytes | str) -> UnitRegistry:
        try:
            entries = _entries_adapter.validate_json(raw)
        except ValidationError as error:
            raise UnitRegistryError(*_describe(error, raw)) from None
        return cls(entries)

    @classmethod
    def load(cls, path: Path | None) -> UnitRegistry:
        """The registry in `path`, or the Mỹ Hào tree shipped with the project."""
        return cls.from_json(path.read_bytes() if path is not None else _shipped(DEFAULT_UNITS_RESOURCE))

    @classmethod
    def load_shipped(cls, resource: str) -> UnitRegistry:
        """A registry shipped in `shared/data` (`DEFAULT_UNITS_RESOURCE`, `HUNG_YEN_UNITS_RESOURCE`)."""
        return cls.from_json(_shipped(resource))

    # -- lookups

    def resolve(self, code: str, day: date) -> UnitEntry | None:
        for start, end, entry in self._spans.get(code, ()):
            if start <= day < end:
                return entry
        if day == date.max:  # the one day the open-ended sentinel leaves out
            return next((e for e in self._by_code.get(code, ()) if e.valid_on(day)), None)
        return None

    def entries_of(self, code: str) -> tuple[UnitEntry, ...]:
        """Every entry that ever had this code (none: the code is unknown)."""
        return self._by_code.get(code, ())

    def ancestors(self, entry: UnitEntry) -> Iterator[UnitEntry]:
        """The entry and its parents, up to its root."""
        current: UnitEntry | None = entry
        while current is not None:
            yield current
            current = self._parents[current.key]

    def resolve_organ(self, organ: str, day: date) -> UnitEntry | None:
        for entry in self._organs.get(normalize_organ(organ), ()):
            if entry.valid_on(day):
                return entry
        return None

    def entry(self, key: str) -> UnitEntry:
        """The entry of a stored unit key (KeyError if unknown)."""
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def parent_entry(self, entry: UnitEntry) -> UnitEntry | None:
        return self._parents[entry.key]

    def successor_entries(self, entry: UnitEntry) -> tuple[UnitEntry, ...]:
        """The entries named by `entry.successors`, in the same order."""
        return self._successors[entry.key]

    def predecessor_entries(self, entry: UnitEntry) -> tuple[UnitEntry, ...]:
        """The entries that name `entry` as a successor."""
        return self._predecessors.get(entry.key, ())

    @property
    def dated(self) -> bool:
        return bool(self.boundaries)

    def tree(self, day: date) -> UnitTree:
        period = bisect_right(self.boundaries, day)
        tree = self._trees.get(period)
        if tree is None:
            start = self.boundaries[period - 1] if period > 0 else None
            end = self.boundaries[period] if period < len(self.boundaries) else None
            tree = self._trees[period] = _build_tree(self, day, start, end)
        return tree

    def today(self) -> UnitTree:
        return self.tree(local_day(datetime.now(UTC)))

    # -- validation

    def _check_entries(self) -> None:
        problems: list[str] = []
        for label, entry, normalized in zip(self._labels, self.entries, self._normalized, strict=True):
            if entry.valid_from is not None and entry.valid_to is not None and entry.valid_from >= entry.valid_to:
                problems.append(f"{label}: valid_from must be before valid_to")
            if entry.successors and entry.valid_to is None:
                problems.append(f"{label}: has successors but never ends (valid_to is null)")
            codes = [s.code for s in entry.successors]
            for code in sorted({c for c in codes if codes.count(c) > 1}):
                problems.append(f"{label}: lists successor {code!r} twice")
            whole = [s for s in entry.successors if s.whole]
            if entry.successors and not (len(codes) == 1 and whole) and not (len(codes) > 1 and not whole):
                problems.append(f"{label}: successors must be one whole successor or several partial ones")
            if any(not organ for organ in normalized):
                problems.append(f"{label}: has an empty organ")
        by_code: dict[str, list[int]] = defaultdict(list)
        for index, entry in enumerate(self.entries):
            for other in by_code[entry.code]:
                if self.entries[other].overlaps(entry):
                    problems.append(f"{self._labels[index]}: overlaps {self._labels[other]} (same code)")
            by_code[entry.code].append(index)
        if problems:
            raise UnitRegistryError(*problems)

    def _index_codes(self) -> dict[str, tuple[UnitEntry, ...]]:
        by_code: dict[str, list[UnitEntry]] = defaultdict(list)
        for entry in self.entries:
            by_code[entry.code].append(entry)
        return {code: tuple(sorted(found, key=_start)) for code, found in by_code.items()}

    def _link(self) -> tuple[dict[str, UnitEntry | None], dict[str, tuple[UnitEntry, ...]]]:
        problems: list[str] = []
        parents: dict[str, UnitEntry | None] = {}
        successors: dict[str, tuple[UnitEntry, ...]] = {}
        for label, entry in zip(self._labels, self.entries, strict=True):
            parents[entry.key] = None
            if entry.parent is not None:
                candidates = self._by_code.get(entry.parent)
                parent = next((c for c in candidates or () if c.covers(entry)), None)
                if not candidates:
                    problems.append(f"{label}: names an unknown parent {entry.parent!r}")
                elif parent is None:
                    problems.append(
                        f"{label}: parent {entry.parent!r} is not one unit valid on every day this unit is"
                        " (a unit whose parent changes is two entries)"
                    )
                parents[entry.key] = parent
            found: list[UnitEntry] = []
            for successor in entry.successors:
                candidates = self._by_code.get(successor.code)
                taker = self.resolve(successor.code, entry.valid_to) if entry.valid_to is not None else None
                if not candidates:
                    problems.append(f"{label}: names an unknown successor {successor.code!r}")
                elif taker is None and entry.valid_to is not None:
                    problems.append(
                        f"{label}: successor {successor.code!r} is not valid on {entry.valid_to},"
                        " the day this unit ends"
                    )
                elif taker is not None:
                    found.append(taker)
            successors[entry.key] = tuple(found)
        if problems:
            raise UnitRegistryError(*problems)
        return parents, successors

    def _check_ancestry(self) -> None:
        problems: list[str] = []
        for label, entry in zip(self._labels, self.entries, strict=True):
            seen = {entry.key}
            parent = self._parents[entry.key]
            while parent is not None:
                if parent.key in seen:
                    problems.append(f"{label}: is its own ancestor (through {parent.code!r})")
                    break
                seen.add(parent.key)
                parent = self._parents[parent.key]
        if problems:
            raise UnitRegistryError(*problems)

    def _index_organs(self) -> dict[str, tuple[UnitEntry, ...]]:
        problems: list[str] = []
        by_organ: dict[str, list[UnitEntry]] = defaultdict(list)
        for entry, normalized in zip(self.entries, self._normalized, strict=True):
            for organ in normalized:
                for other in by_organ[organ]:
                    if other.overlaps(entry):
                        problems.append(
                            f"{self._labels[self._index[entry.key]]}: organ {organ!r} also names"
                            f" {self._labels[self._index[other.key]]} on the same days"
                        )
                by_organ[organ].append(entry)
        if problems:
            raise UnitRegistryError(*problems)
        return {organ: tuple(found) for organ, found in by_organ.items()}


def _start(entry: UnitEntry) -> date:
    return entry.valid_from or date.min


def _shipped(resource: str) -> bytes:
    return resources.files("shared.data").joinpath(resource).read_bytes()


def _describe(error: ValidationError, raw: bytes | str) -> list[str]:
    """Pydantic's errors, each naming the entry by position and, when it has one, its code."""
    try:
        listed = json.loads(raw)
    except ValueError:
        listed = None
    problems = []
    for detail in error.errors():
        location = detail["loc"]
        if location and isinstance(location[0], int):
            index = location[0]
            item = listed[index] if isinstance(listed, list) and index < len(listed) else None
            code = item.get("code") if isinstance(item, dict) else None
            field = ".".join(str(part) for part in location[1:]) or "entry"
            problems.append(f"entry {index} (code {code!r}): {field}: {detail['msg']}")
        else:
            problems.append(f"registry: {detail['msg']}")
    return problems


class UnitTree:
    """The units valid on one day (the days `valid_from` .. `valid_to` share it) and their roll-up."""

    def __init__(
        self,
        units: dict[str, UnitEntry],
        children: dict[str, tuple[str, ...]],
        *,
        valid_from: date | None = None,
        valid_to: date | None = None,
        self_keys: dict[str, tuple[str, ...]] | None = None,
        extra_rows: dict[str, tuple[ExtraRow, ...]] | None = None,
        predecessors: dict[str, tuple[Predecessor, ...]] | None = None,
        homes: dict[str, str | None] | None = None,
    ) -> None:
        self.units = units
        self.children = children
        self.valid_from = valid_from
        self.valid_to = valid_to
        self.roots = tuple(code for code, unit in units.items() if unit.parent is None)
        self._self_keys = self_keys if self_keys is not None else {code: (u.key,) for code, u in units.items()}
        self._extra_rows = extra_rows or {}
        self._predecessors = predecessors or {}
        self._homes = homes if homes is not None else {u.key: code for code, u in units.items()}
        self.unplaced = tuple(sorted(key for key, home in self._homes.items() if home is None))
        self._subtree_keys: dict[str, tuple[str, ...]] = {}
        for code in reversed(self._preorder()):  # children before their parent
            keys = list(self._self_keys[code])
            for row in self._extra_rows.get(code, ()):
                keys.extend(row.keys)
            for child in self.children[code]:
                keys.extend(self._subtree_keys[child])
            self._subtree_keys[code] = tuple(sorted(keys))

    # -- the v1 API: today's tree of a registry

    @classmethod
    def from_units(cls, units: Iterable[UnitEntry]) -> UnitTree:
        return UnitRegistry(units).today()

    @classmethod
    def from_json(cls, raw: bytes | str) -> UnitTree:
        return UnitRegistry.from_json(raw).today()

    @classmethod
    def load(cls, path: Path | None) -> UnitTree:
        """Today's tree of the registry in `path`, or of the Mỹ Hào tree shipped with the project."""
        return UnitRegistry.load(path).today()

    def __contains__(self, code: object) -> bool:
        return code in self.units

    def _preorder(self) -> list[str]:
        order: list[str] = []
        for root in self.roots:
            order.extend(self.subtree(root))
        return order

    def subtree(self, code: str) -> list[str]:
        """The unit and all its descendants, depth first, the unit itself first."""
        result: list[str] = []
        stack = [code]
        while stack:
            current = stack.pop()
            result.append(current)
            stack.extend(reversed(self.children[current]))
        return result

    def as_list(self) -> list[dict[str, str | None]]:
        return [{"code": u.code, "name": u.name, "parent": u.parent} for u in self.units.values()]

    # -- roll-up

    def stored_keys(self, code: str, scope: Scope = "subtree") -> tuple[str, ...]:
        """The stored unit keys whose counters make up the unit's figures, sorted."""
        return self._subtree_keys[code] if scope == "subtree" else self._self_keys[code]

    def extra_rows(self, code: str) -> tuple[ExtraRow, ...]:
        """Split, dissolved and later units counted here, for the breakdown after the child rows."""
        if code not in self.units:
            raise KeyError(code)
        return self._extra_rows.get(code, ())

    def predecessors(self, code: str) -> tuple[Predecessor, ...]:
        """The ended entries whose events roll up into the unit, directly or transitively."""
        if code not in self.units:
            raise KeyError(code)
        return self._predecessors.get(code, ())

    def home(self, key: str) -> str | None:
        """The code of the unit of this tree whose subtree counts the stored key (None: no unit does)."""
        return self._homes[key]

    def listing(self) -> list[dict[str, object]]:
        """The `/v1/units` body for this tree."""
        return [
            {
                "code": unit.code,
                "name": unit.name,
                "parent": unit.parent,
                "valid_from": _iso(unit.valid_from),
                "valid_to": _iso(unit.valid_to),
                "predecessors": [
                    {
                        "code": p.entry.code,
                        "name": p.entry.name,
                        "valid_from": _iso(p.entry.valid_from),
                        "valid_to": _iso(p.entry.valid_to),
                        "whole": p.whole,
                    }
                    for p in self.predecessors(code)
                ],
            }
            for code, unit in self.units.items()
        ]


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _build_tree(registry: UnitRegistry, day: date, start: date | None, end: date | None) -> UnitTree:
    valid = [e for e in registry.entries if e.valid_on(day)]
    units = {e.code: e for e in valid}
    children: dict[str, list[str]] = {e.code: [] for e in valid}
    for entry in valid:
        if entry.parent is not None:
            children[entry.parent].append(entry.code)
    placement = _Placement(registry, day, units)

    members: dict[str, list[UnitEntry]] = defaultdict(list)  # head key -> its group
    heads: dict[str, UnitEntry] = {}
    for entry in registry.entries:
        head = entry
        if entry.valid_to is not None and entry.valid_to <= day:
            while head.valid_to is not None and head.valid_to <= day and len(head.successors) == 1:
                head = registry.successor_entries(head)[0]  # the one successor is whole (validated)
        heads[head.key] = head
        members[head.key].append(entry)

    self_keys = {code: tuple(sorted(m.key for m in members[unit.key])) for code, unit in units.items()}
    predecessors: dict[str, list[Predecessor]] = defaultdict(list)
    rows: dict[str, list[ExtraRow]] = defaultdict(list)
    homes: dict[str, str | None] = {}
    for head_key, group in members.items():
        head = heads[head_key]
        home = placement.home(head)
        for member in group:
            homes[member.key] = home
        if head.valid_on(day):
            predecessors[head.code].extend(Predecessor(m, True) for m in group if m is not head)
            continue
        if home is None:
            continue
        kind: RowKind = (
            "successor"
            if head.valid_to is None or head.valid_to > day
            else ("split" if head.successors else "dissolved")
        )
        rows[home].append(ExtraRow(head, kind, tuple(sorted(m.key for m in group))))
        if kind != "successor":
            predecessors[home].extend(Predecessor(m, False) for m in group)

    def row_order(row: ExtraRow) -> tuple[int, str, date]:
        return _ROW_ORDER[row.kind], row.entry.code, _start(row.entry)

    def predecessor_order(p: Predecessor) -> tuple[date, str, date]:
        return p.entry.valid_to or date.max, p.entry.code, _start(p.entry)

    return UnitTree(
        units,
        {code: tuple(kids) for code, kids in children.items()},
        valid_from=start,
        valid_to=end,
        self_keys=self_keys,
        extra_rows={code: tuple(sorted(found, key=row_order)) for code, found in rows.items()},
        predecessors={code: tuple(sorted(found, key=predecessor_order)) for code, found in predecessors.items()},
        homes=homes,
    )


class _Placement:
    """Homes of entries in the tree of `day` (the rules in the module docstring), memoized."""

    def __init__(self, registry: UnitRegistry, day: date, units: dict[str, UnitEntry]) -> None:
        self._registry = registry
        self._day = day
        self._units = units
        self._depth: dict[str, int] = {}
        self._homes: dict[str, str | None] = {}
        self._open: set[str] = set()

    def home(self, entry: UnitEntry) -> str | None:
        if entry.key in self._homes:
            return self._homes[entry.key]
        if entry.key in self._open:
            # Only a registry whose later units name each other backward gets here; such a loop has no
            # unit of this tree in it.
            return None
        self._open.add(entry.key)
        registry = self._registry
        if entry.valid_on(self._day):
            home: str | None = entry.code
        elif entry.valid_to is not None and entry.valid_to <= self._day:
            takers = registry.successor_entries(entry)
            home = self._common(self.home(e) for e in takers) if takers else self._parent_home(entry)
        else:
            givers = registry.predecessor_entries(entry)
            home = self._common(self.home(e) for e in givers) if givers else self._parent_home(entry)
        self._open.discard(entry.key)
        self._homes[entry.key] = home
        return home

    def _parent_home(self, entry: UnitEntry) -> str | None:
        parent = self._registry.parent_entry(entry)
        return None if parent is None else self.home(parent)

    def _common(self, codes: Iterator[str | None]) -> str | None:
        """The nearest common ancestor-or-self of the codes that exist; None if there is none."""
        result: str | None = None
        for code in codes:
            if code is None:
                continue
            result = code if result is None else self._ancestor(result, code)
            if result is None:
                return None
        return result

    def _ancestor(self, a: str, b: str) -> str | None:
        depth_a, depth_b = self._depth_of(a), self._depth_of(b)
        x: str | None = a
        y: str | None = b
        while depth_a > depth_b and x is not None:
            x, depth_a = self._units[x].parent, depth_a - 1
        while depth_b > depth_a and y is not None:
            y, depth_b = self._units[y].parent, depth_b - 1
        while x != y and x is not None and y is not None:
            x, y = self._units[x].parent, self._units[y].parent
        return x if x == y else None

    def _depth_of(self, code: str) -> int:
        depth = self._depth.get(code)
        if depth is None:
            parent = self._units[code].parent
            depth = self._depth[code] = 0 if parent is None else self._depth_of(parent) + 1
        return depth
