"""Compact JSON form of aggregate states, as stored in PostgreSQL (pure, no I/O).

States are the largest table (one row per dossier, document and procedure), encoded once per
change on the aggregator's hot path. The form keeps every fact and version, written once:
- a state's versions are listed once, in "v", and its facts refer to them by index (a dossier's
  due date comes with its received facts, one event: one version);
- a version is [time, id, source] where it is listed first, and after that [time, id] when its
  source is that of the first (the usual case: one one-stop system sends a dossier's events);
- an instant is an integer, microseconds since the Unix epoch, when it has its usual offset: UTC
  for versions (`domain.version_of`), +07:00 for facts (as the one-stop systems send them); any
  other offset is kept as RFC 3339 text with that offset;
- a dossier's one-way flags are one integer, bit n for `_DOSSIER_FLAGS[n]` (append only).

The decoder also reads the earlier form of rows written before migration 0005 (versions inline
as [RFC 3339 time, id, source], instants as RFC 3339 text, flags as a list of names); such a row
takes this form the next time an event changes its state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from services.aggregator.domain import (
    NO_V2_FACTS,
    AggregateKey,
    CatalogueEntry,
    DocumentState,
    DossierState,
    ProcedureState,
    RatingFacts,
    ReceivedFacts,
    RegisteredFacts,
    ResolvedFacts,
    State,
    V2Facts,
    Version,
    Versioned,
)

Json = dict[str, Any]

_MICROSECOND = timedelta(microseconds=1)
# The Unix epoch in the offset of versions and in that of facts: an integer instant is added to it.
_VERSION_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FACT_EPOCH = _VERSION_EPOCH.astimezone(timezone(timedelta(hours=7)))

# Bit n of a dossier's "flags" (never reorder: stored states hold the bits).
_DOSSIER_FLAGS = (
    "components_digitized",
    "result_digitized",
    "paid_online",
    "synced",
    "components_reused",
    "components_from_personal_store",
)
_V2_FLAGS = _DOSSIER_FLAGS[3:]
_SIGNATURES = ("signed_by_organization", "signed_by_leader")


def dump_state(state: State) -> str:
    """The stored JSON text of a state."""
    return orjson.dumps(_encode(state)).decode()


def dump_states(states: Mapping[AggregateKey, State]) -> tuple[list[str], list[str], list[str]]:
    """The kinds, keys and stored texts of a batch's states, as three columns."""
    kinds: list[str] = [kind for kind, _key in states]
    keys = [key for _kind, key in states]
    return kinds, keys, [dump_state(state) for state in states.values()]


def load_state(key: AggregateKey, text: str | bytes) -> State:
    """The state of aggregate `key` from its stored JSON text (either form)."""
    raw = orjson.loads(text)
    return _DECODERS[key[0]](raw, _Versions(raw))


# --- instants and versions ------------------------------------------------------------------------


def _instant(at: datetime, epoch: datetime) -> int | datetime:
    """`at` as an integer when it has `epoch`'s offset; else as it is (orjson writes RFC 3339)."""
    if at.utcoffset() == epoch.utcoffset():
        return (at - epoch) // _MICROSECOND
    return at


def _parse_instant(raw: int | str, epoch: datetime) -> datetime:
    if type(raw) is int:
        return epoch + timedelta(microseconds=raw)
    return datetime.fromisoformat(raw)  # type: ignore[arg-type]


def _fact_at(at: datetime) -> int | datetime:
    return _instant(at, _FACT_EPOCH)


def _parse_fact_at(raw: int | str) -> datetime:
    return _parse_instant(raw, _FACT_EPOCH)


class _VersionTable:
    """The versions of one state being encoded: each listed once, referred to by index."""

    def __init__(self) -> None:
        self.listed: list[list[Any]] = []
        self._first_source = ""
        self._index: dict[Version, int] = {}

    def ref(self, version: Version) -> int:
        index = self._index.get(version)
        if index is None:
            at, ident, source = version
            entry: list[Any] = [_instant(at, _VERSION_EPOCH), ident]
            if not self.listed:
                self._first_source = source
                entry.append(source)
            elif source != self._first_source:
                entry.append(source)
            index = self._index[version] = len(self.listed)
            self.listed.append(entry)
        return index

    def into(self, out: Json) -> Json:
        if self.listed:
            out["v"] = self.listed
        return out


class _Versions:
    """The versions of one stored state being decoded: by index, or inline in the earlier form."""

    def __init__(self, raw: Json) -> None:
        listed = raw.get("v", ())
        source = listed[0][2] if listed else ""
        self._listed = [
            (_parse_instant(entry[0], _VERSION_EPOCH), entry[1], entry[2] if len(entry) > 2 else source)
            for entry in listed
        ]

    def __call__(self, raw: int | list[Any]) -> Version:
        if type(raw) is int:
            return self._listed[raw]
        at, ident, source = raw  # type: ignore[misc]
        return (datetime.fromisoformat(at), ident, source)


# --- encoding ------------------------------------------------------------------------------------


def _encode(state: State) -> Json:
    versions = _VersionTable()
    match state:
        case DossierState():
            out = _encode_dossier(state, versions.ref)
        case DocumentState():
            out = _encode_document(state, versions.ref)
        case ProcedureState():
            out = {
                "unit": state.unit,
                "code": state.procedure_code,
                "entries": [_encode_entry(e, versions.ref) for e in sorted(state.entries)],
            }
    return versions.into(out)


def _encode_entry(entry: CatalogueEntry, ref: Any) -> list[Any]:
    encoded = [ref(entry.version), _fact_at(entry.effective_at), entry.service_level]
    if entry.fee_bearing or not entry.requires_paper_result:  # v1 entries keep their three items
        encoded += [entry.fee_bearing, entry.requires_paper_result]
    return encoded


def _encode_dossier(state: DossierState, ref: Any) -> Json:
    out: Json = {}
    if state.received is not None:
        r = state.received.value
        out["received"] = [
            ref(state.received.version),
            r.unit,
            r.procedure_code,
            r.channel,
            _fact_at(r.received_at),
            r.fee_required,
            r.digitization_required,
        ]
    if state.due is not None:
        due = state.due.value
        out["due"] = [ref(state.due.version), None if due is None else _fact_at(due)]
    if state.resolved is not None:
        res = state.resolved.value
        out["resolved"] = [ref(state.resolved.version), _fact_at(res.resolved_at), res.outcome,
                           res.result_digitization_required]  # fmt: skip
    if state.withdrawn is not None:
        out["withdrawn"] = [ref(state.withdrawn.version), _fact_at(state.withdrawn.value)]
    if state.rating is not None:
        rat = state.rating.value
        out["rating"] = [ref(state.rating.version), _fact_at(rat.rated_at), rat.rating]
    v2 = state.v2
    if v2 is not NO_V2_FACTS:
        if v2.supplement_requests:
            out["supplements"] = [ref(v) for v in sorted(v2.supplement_requests)]
        if v2.supplement_completions:
            out["completions"] = [ref(v) for v in sorted(v2.supplement_completions)]
    flags = (
        state.components_digitized
        | state.result_digitized << 1
        | state.paid_online << 2
        | v2.synced << 3
        | v2.components_reused << 4
        | v2.components_from_personal_store << 5
    )
    if flags:
        out["flags"] = flags
    return out


def _encode_document(state: DocumentState, ref: Any) -> Json:
    out: Json = {}
    if state.registered is not None:
        r = state.registered.value
        out["registered"] = [ref(state.registered.version), r.unit, r.direction, _fact_at(r.registered_at),
                             r.electronic, r.confidential]  # fmt: skip
    for name in _SIGNATURES:
        signature: Versioned[datetime] | None = getattr(state, name)
        if signature is not None:
            out[name] = [ref(signature.version), _fact_at(signature.value)]
    return out


# --- decoding ------------------------------------------------------------------------------------


def _flag_names(raw: int | list[str]) -> set[str]:
    if type(raw) is int:
        return {name for bit, name in enumerate(_DOSSIER_FLAGS) if raw >> bit & 1}
    return set(raw)  # type: ignore[arg-type]


def _decode_dossier(raw: Json, version: _Versions) -> DossierState:
    received = due = resolved = withdrawn = rating = None
    if "received" in raw:
        v, unit, code, channel, at, fee, dig = raw["received"]
        received = Versioned(version(v), ReceivedFacts(unit, code, channel, _parse_fact_at(at), fee, dig))
    if "due" in raw:
        v, at = raw["due"]
        due = Versioned(version(v), None if at is None else _parse_fact_at(at))
    if "resolved" in raw:
        v, at, outcome, required = raw["resolved"]
        resolved = Versioned(version(v), ResolvedFacts(_parse_fact_at(at), outcome, required))
    if "withdrawn" in raw:
        v, at = raw["withdrawn"]
        withdrawn = Versioned(version(v), _parse_fact_at(at))
    if "rating" in raw:
        v, at, value = raw["rating"]
        rating = Versioned(version(v), RatingFacts(_parse_fact_at(at), value))
    flags = _flag_names(raw.get("flags", 0))
    v2 = NO_V2_FACTS
    if "supplements" in raw or "completions" in raw or not flags.isdisjoint(_V2_FLAGS):
        v2 = V2Facts(
            frozenset(version(v) for v in raw.get("supplements", ())),
            frozenset(version(v) for v in raw.get("completions", ())),
            "synced" in flags,
            "components_reused" in flags,
            "components_from_personal_store" in flags,
        )
    return DossierState(
        received=received,
        due=due,
        resolved=resolved,
        withdrawn=withdrawn,
        rating=rating,
        components_digitized="components_digitized" in flags,
        result_digitized="result_digitized" in flags,
        paid_online="paid_online" in flags,
        v2=v2,
    )


def _decode_document(raw: Json, version: _Versions) -> DocumentState:
    registered = None
    if "registered" in raw:
        v, unit, direction, at, electronic, confidential = raw["registered"]
        registered = Versioned(
            version(v), RegisteredFacts(unit, direction, _parse_fact_at(at), electronic, confidential)
        )
    signatures: dict[str, Versioned[datetime]] = {}
    for name in _SIGNATURES:
        if name in raw:
            v, at = raw[name]
            signatures[name] = Versioned(version(v), _parse_fact_at(at))
    return DocumentState(
        registered=registered,
        signed_by_organization=signatures.get("signed_by_organization"),
        signed_by_leader=signatures.get("signed_by_leader"),
    )


def _decode_procedure(raw: Json, version: _Versions) -> ProcedureState:
    entries = frozenset(
        CatalogueEntry(version(v), _parse_fact_at(at), level, *flags) for v, at, level, *flags in raw["entries"]
    )
    return ProcedureState(unit=raw["unit"], procedure_code=raw["code"], entries=entries)


_DECODERS: dict[str, Callable[[Json, _Versions], State]] = {
    "dossier": _decode_dossier,
    "document": _decode_document,
    "procedure": _decode_procedure,
}
