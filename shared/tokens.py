"""Bearer tokens of upstream systems and readers, stored as SHA-256 hashes.

A token lists the event `source` values and the unit subtrees it may send for ("*": any).
The development configuration has fixed, well-known tokens; production has none by default.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.units import UnitRegistry

DEV_INTAKE_TOKEN = "dev-intake-token"
DEV_READ_TOKEN = "dev-read-token"
ANY = "*"


class TokenGrant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    sources: tuple[str, ...] = (ANY,)
    units: tuple[str, ...] = (ANY,)  # roots of the unit subtrees the token covers

    def allows_source(self, source: str) -> bool:
        return ANY in self.sources or source in self.sources

    def allows_unit(self, unit: str, registry: UnitRegistry, day: date) -> bool:
        """Whether the unit with this code on `day` lies in one of the token's subtrees (as of that day)."""
        if ANY in self.units:
            return True
        entry = registry.resolve(unit, day)
        if entry is None:
            return unit in self.units
        return any(ancestor.code in self.units for ancestor in registry.ancestors(entry))


_grants_adapter = TypeAdapter(list[TokenGrant])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    def __init__(self, grants: list[TokenGrant]) -> None:
        self._by_hash = {grant.sha256: grant for grant in grants}

    @classmethod
    def load(cls, path: Path | None, *, development_token: str | None) -> TokenRegistry:
        grants = _grants_adapter.validate_json(path.read_bytes()) if path is not None else []
        if development_token is not None:
            grants.append(TokenGrant(name="development", sha256=hash_token(development_token)))
        return cls(grants)

    def authenticate(self, authorization: str | None) -> TokenGrant | None:
        """The grant of an `Authorization: Bearer <token>` header, or None."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        digest = hash_token(authorization[7:].strip())
        for known, grant in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return grant
        return None
