"""Compact JSON form of aggregate states, as stored in PostgreSQL (pure, no I/O).

Timestamps are RFC 3339 strings with their offset, written by orjson straight from the datetime
objects (the same text as `datetime.isoformat`); states are encoded once per change, so this is
on the aggregator's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _version(version: Version) -> list[Any]:
    return [version[0], version[1], version[2]]


def _parse_version(raw: list[str]) -> Version:
    return (_parse_ts(raw[0]), raw[1], raw[2])


def dump_states(states: Mapping[AggregateKey, State]) -> str:
    """One JSON array of [kind, key, state] for a batch of states (one orjson call)."""
    return orjson.dumps([[kind, key, _encode(state)] for (kind, key), state in states.items()]).decode()


def load_state(key: AggregateKey, text: str | bytes) -> State:
    """The state of aggregate `key` from its stored JSON text."""
    return _decode(key, orjson.loads(text))


def _encode(state: State) -> Json:
    match state:
        case DossierState():
            return _encode_dossier(state)
        case DocumentState():
            return _encode_document(state)
        case ProcedureState():
            return {
                "unit": state.unit,
                "code": state.procedure_code,
                "entries": [_encode_entry(e) for e in sorted(state.entries)],
            }


def _decode(key: AggregateKey, raw: Json) -> State:
    kind = key[0]
    if kind == "dossier":
        return _decode_dossier(raw)
    if kind == "document":
        return _decode_document(raw)
    return ProcedureState(
        unit=raw["unit"], procedure_code=raw["code"], entries=frozenset(_decode_entry(e) for e in raw["entries"])
    )


def _encode_entry(entry: CatalogueEntry) -> list[Any]:
    encoded = [_version(entry.version), entry.effective_at, entry.service_level]
    if entry.fee_bearing or not entry.requires_paper_result:  # v1 entries keep their three items
        encoded += [entry.fee_bearing, entry.requires_paper_result]
    return encoded


def _decode_entry(raw: list[Any]) -> CatalogueEntry:
    v, at, level, *flags = raw
    return CatalogueEntry(_parse_version(v), _parse_ts(at), level, *flags)


def _encode_dossier(state: DossierState) -> Json:
    out: Json = {}
    if state.received is not None:
        r = state.received.value
        out["received"] = [
            _version(state.received.version),
            r.unit,
            r.procedure_code,
            r.channel,
            r.received_at,
            r.fee_required,
            r.digitization_required,
        ]
    if state.due is not None:
        due = state.due.value
        out["due"] = [_version(state.due.version), None if due is None else due]
    if state.resolved is not None:
        res = state.resolved.value
        out["resolved"] = [
            _version(state.resolved.version),
            res.resolved_at,
            res.outcome,
            res.result_digitization_required,
        ]
    if state.withdrawn is not None:
        out["withdrawn"] = [_version(state.withdrawn.version), state.withdrawn.value]
    if state.rating is not None:
        rat = state.rating.value
        out["rating"] = [_version(state.rating.version), rat.rated_at, rat.rating]
    flags = [name for name in ("components_digitized", "result_digitized", "paid_online") if getattr(state, name)]
    v2 = state.v2
    if v2 is not NO_V2_FACTS:
        flags += [name for name in _V2_FLAGS if getattr(v2, name)]
        if v2.supplement_requests:
            out["supplements"] = [_version(v) for v in sorted(v2.supplement_requests)]
        if v2.supplement_completions:
            out["completions"] = [_version(v) for v in sorted(v2.supplement_completions)]
    if flags:
        out["flags"] = flags
    return out


_V2_FLAGS = ("synced", "components_reused", "components_from_personal_store")


def _decode_dossier(raw: Json) -> DossierState:
    received = due = resolved = withdrawn = rating = None
    if "received" in raw:
        v, unit, code, channel, at, fee, dig = raw["received"]
        received = Versioned(_parse_version(v), ReceivedFacts(unit, code, channel, _parse_ts(at), fee, dig))
    if "due" in raw:
        v, at = raw["due"]
        due = Versioned(_parse_version(v), None if at is None else _parse_ts(at))
    if "resolved" in raw:
        v, at, outcome, required = raw["resolved"]
        resolved = Versioned(_parse_version(v), ResolvedFacts(_parse_ts(at), outcome, required))
    if "withdrawn" in raw:
        v, at = raw["withdrawn"]
        withdrawn = Versioned(_parse_version(v), _parse_ts(at))
    if "rating" in raw:
        v, at, value = raw["rating"]
        rating = Versioned(_parse_version(v), RatingFacts(_parse_ts(at), value))
    flags = set(raw.get("flags", ()))
    v2 = NO_V2_FACTS
    if "supplements" in raw or "completions" in raw or not flags.isdisjoint(_V2_FLAGS):
        v2 = V2Facts(
            frozenset(_parse_version(v) for v in raw.get("supplements", ())),
            frozenset(_parse_version(v) for v in raw.get("completions", ())),
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


def _encode_document(state: DocumentState) -> Json:
    out: Json = {}
    if state.registered is not None:
        r = state.registered.value
        out["registered"] = [
            _version(state.registered.version),
            r.unit,
            r.direction,
            r.registered_at,
            r.electronic,
            r.confidential,
        ]
    for name in ("signed_by_organization", "signed_by_leader"):
        signature: Versioned[datetime] | None = getattr(state, name)
        if signature is not None:
            out[name] = [_version(signature.version), signature.value]
    return out


def _decode_document(raw: Json) -> DocumentState:
    registered = None
    if "registered" in raw:
        v, unit, direction, at, electronic, confidential = raw["registered"]
        registered = Versioned(
            _parse_version(v), RegisteredFacts(unit, direction, _parse_ts(at), electronic, confidential)
        )
    signatures: dict[str, Versioned[datetime]] = {}
    for name in ("signed_by_organization", "signed_by_leader"):
        if name in raw:
            v, at = raw[name]
            signatures[name] = Versioned(_parse_version(v), _parse_ts(at))
    return DocumentState(
        registered=registered,
        signed_by_organization=signatures.get("signed_by_organization"),
        signed_by_leader=signatures.get("signed_by_leader"),
    )
