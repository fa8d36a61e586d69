"""Deleting the exact level changes that the store no longer keeps, as the days turn.

Batches store exact level changes from `AggregatorStore.levels_kept_from` on (the start of
yesterday); the rows of earlier instants stay behind as that cut moves, or from before an upgrade.
Their days are in daily_counts, so no figure reads them. This task deletes them at start and then
every hour; with several instances each does (a delete that finds nothing costs a scan of a table
holding about two days of rows).
"""

from __future__ import annotations

import asyncio
import logging

from services.aggregator.store import AggregatorStore, StoreError

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0


async def drop_past_level_changes(store: AggregatorStore, interval_seconds: float = INTERVAL_SECONDS) -> None:
    """Delete the level changes before the store's cut now, then again every `interval_seconds`."""
    while True:
        kept_from = store.levels_kept_from()
        try:
            dropped = await store.drop_level_changes_before(kept_from)
        except StoreError as exc:
            log.warning("could not delete past level changes: %s", exc)
        else:
            if dropped:
                log.info("deleted %s level changes before %s (their days are in daily_counts)", dropped, kept_from)
        await asyncio.sleep(interval_seconds)
