"""A reference of the roll-up across reorganizations, from the words of contract §1.1 and docs/units.md.

It shares no code with `shared.units`: it reads the registry file as plain JSON and answers, for a
unit U of the tree of day T and a scope, whether the events of a unit code on a local day count in
U's figures. The reference model (`tests.reference_model.figures`) takes these answers as its unit
filters. Plain and slow on purpose; only the entry lookup is memoized.

The rules, as the contract words them:
- an event's unit is the entry with its code valid on the event's fact day (`valid_from` <= day <
  `valid_to`);
- U's figures include U itself and every unit merged into U whole, transitively, before T
  (`scope=self` is exactly these);
- a split unit (successors with `whole: false`) counts in the nearest unit of T containing all its
  successors; a unit that ended without successors counts where its parent counts;
- a unit that starts after T counts, backwards, in the nearest unit of T containing all the units it
  took over (those that name it as a successor), or where its parent counts when it took over none
  (the project's reading, docs/units.md: the root of every tree keeps all the events of its area);
- `scope=subtree` adds everything that counts in a unit of T below U;
- a procedure counts only while its unit exists: at `as_of` its unit (the entry valid on the day of
  its winning publication) must still be valid.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

EntryId = tuple[str, str | None]  # (code, valid_from)


class ReferenceRegistry:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries: dict[EntryId, dict[str, Any]] = {(e["code"], e.get("valid_from")): e for e in entries}
        self._by_code: dict[str, list[EntryId]] = {}
        for ident in self.entries:
            self._by_code.setdefault(ident[0], []).append(ident)
        self.entry_on = cache(self._entry_on)
        self._predecessors: dict[EntryId, list[EntryId]] | None = None
        self._homes: dict[tuple[EntryId, date], str | None] = {}

    @classmethod
    def load(cls, path: Path) -> ReferenceRegistry:
        loaded: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return cls(loaded)

    # -- dates

    def _entry_on(self, code: str, day: date) -> EntryId | None:
        for ident in self._by_code.get(code, []):
            if self.valid(ident, day):
                return ident
        return None

    def valid(self, ident: EntryId, day: date) -> bool:
        entry = self.entries[ident]
        start, end = entry.get("valid_from"), entry.get("valid_to")
        return (start is None or date.fromisoformat(start) <= day) and (end is None or day < date.fromisoformat(end))

    def _ended_by(self, ident: EntryId, day: date) -> bool:
        end = self.entries[ident].get("valid_to")
        return end is not None and date.fromisoformat(end) <= day

    def successors(self, ident: EntryId) -> list[tuple[EntryId, bool]]:
        entry = self.entries[ident]
        if not entry.get("successors"):
            return []
        handover = date.fromisoformat(entry["valid_to"])
        found = []
        for successor in entry["successors"]:
            taker = self.entry_on(successor["code"], handover)
            assert taker is not None, f"successor {successor['code']} of {ident} not valid on {handover}"
            found.append((taker, successor["whole"]))
        return found

    def predecessors(self, ident: EntryId) -> list[EntryId]:
        """The entries that name this one as a successor."""
        if self._predecessors is None:
            found: dict[EntryId, list[EntryId]] = {}
            for other in self.entries:
                for taker, _ in self.successors(other):
                    found.setdefault(taker, []).append(other)
            self._predecessors = found
        return self._predecessors.get(ident, [])

    def parent(self, ident: EntryId, day: date) -> EntryId | None:
        parent = self.entries[ident]["parent"]
        return None if parent is None else self.entry_on(parent, day)

    # -- trees

    def tree_units(self, tree: date) -> list[str]:
        return [code for code, start in self.entries if self.valid((code, start), tree)]

    def parent_in_tree(self, code: str, tree: date) -> str | None:
        ident = self.entry_on(code, tree)
        assert ident is not None
        parent: str | None = self.entries[ident]["parent"]
        return parent

    def children_in_tree(self, code: str, tree: date) -> list[str]:
        return [unit for unit in self.tree_units(tree) if self.parent_in_tree(unit, tree) == code]

    def _path(self, code: str, tree: date) -> list[str]:
        """The unit and its ancestors in the tree, the unit first."""
        path = [code]
        while (parent := self.parent_in_tree(path[-1], tree)) is not None:
            path.append(parent)
        return path

    def _nearest_containing(self, codes: list[str | None], tree: date) -> str | None:
        present = [code for code in codes if code is not None]
        if not present:
            return None
        common = self._path(present[0], tree)
        for code in present[1:]:
            path = set(self._path(code, tree))
            common = [unit for unit in common if unit in path]
        return common[0] if common else None

    def home(self, ident: EntryId, tree: date, seen: frozenset[EntryId] = frozenset()) -> str | None:
        """The unit of the tree whose subtree counts the entry's events (None: no unit does)."""
        if (ident, tree) not in self._homes:
            self._homes[(ident, tree)] = self._home(ident, tree, seen)
        return self._homes[(ident, tree)]

    def _home(self, ident: EntryId, tree: date, seen: frozenset[EntryId]) -> str | None:
        if ident in seen:
            return None
        seen = seen | {ident}
        if self.valid(ident, tree):
            return ident[0]
        if self._ended_by(ident, tree):
            takers = self.successors(ident)
            if takers:
                return self._nearest_containing([self.home(taker, tree, seen) for taker, _ in takers], tree)
        else:
            givers = self.predecessors(ident)
            if givers:
                return self._nearest_containing([self.home(giver, tree, seen) for giver in givers], tree)
        parent = self.entries[ident]["parent"]
        day = date.fromisoformat(self.entries[ident]["valid_from"] or "0001-01-01")
        parent_ident = None if parent is None else self.entry_on(parent, day)
        return None if parent_ident is None else self.home(parent_ident, tree, seen)

    def merged_whole_into(self, ident: EntryId, tree: date) -> EntryId | None:
        """The entry valid on the tree day that the entry became by whole merges before it, if any."""
        current = ident
        while not self.valid(current, tree):
            if not self._ended_by(current, tree):
                return None
            takers = self.successors(current)
            if len(takers) != 1 or not takers[0][1]:
                return None
            current = takers[0][0]
        return current

    # -- the filters the reference model takes

    def counts_in(self, unit: str, tree: date, scope: str) -> Callable[[str, date], bool]:
        target = self.entry_on(unit, tree)
        assert target is not None, f"{unit} is not a unit of the tree of {tree}"

        def counts(code: str, day: date) -> bool:
            ident = self.entry_on(code, day)
            if ident is None:
                return False
            if scope == "self":
                return self.merged_whole_into(ident, tree) == target
            home = self.home(ident, tree)
            return home is not None and unit in self._path(home, tree)

        return cache(counts)

    def procedures_in(self, unit: str, tree: date, scope: str) -> Callable[[str, date, date], bool]:
        counts = self.counts_in(unit, tree, scope)

        def procedure_counts(code: str, published: date, as_of_day: date) -> bool:
            ident = self.entry_on(code, published)
            return ident is not None and self.valid(ident, as_of_day) and counts(code, published)

        return procedure_counts
