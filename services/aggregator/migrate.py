"""Versioned SQL migrations, applied in order at start-up, once per schema."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Serializes concurrent start-ups of several aggregator instances on one database.
_MIGRATION_LOCK_ID = 0x7474_6863


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("services.aggregator").joinpath("migrations")
    files = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [(name.split("_", 1)[0], folder.joinpath(name).read_text()) for name in files]


async def apply_migrations(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, schema: str) -> list[str]:
    """Create `schema` if needed and apply the migrations it lacks; returns the versions applied."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_ID)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations '
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')}
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        for version, sql in _migration_files():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    if applied_now:
        log.info("applied migrations %s to schema %s", applied_now, schema)
    return applied_now
