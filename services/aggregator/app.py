"""Composition root of the aggregator: database pool, migrations, topics, consumer, health routes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.aggregator.config import AggregatorSettings
from services.aggregator.consumer import EventConsumer
from services.aggregator.level_cut import drop_past_level_changes
from services.aggregator.migrate import apply_migrations
from services.aggregator.store import AggregatorStore, open_pool
from services.aggregator.unit_placement import registry_placement
from services.infra.kafka_admin import ensure_topics

log = logging.getLogger(__name__)


def _stop_process_unless_asked(task: asyncio.Task[None]) -> None:
    """A consumer that ends on its own is a fault (a defect, see `lanes.classify`): log it and stop
    the process for a restart; nothing was committed of the batch in hand."""
    if task.cancelled() or task.exception() is None:
        return
    log.critical("consumer stopped", exc_info=task.exception())
    os.kill(os.getpid(), signal.SIGTERM)


def _lifespan(settings: AggregatorSettings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: pool, migrations, topics, dead-letter producer, consumer task, the hourly deletion of
    past level changes. Stop: the reverse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings)
        async with pool.acquire() as conn:
            await apply_migrations(conn, settings.database_schema)
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            {settings.events_topic: settings.events_partitions, settings.dead_letter_topic: 1},
            replication_factor=settings.kafka_replication_factor,
            min_insync_replicas=settings.kafka_min_insync_replicas,
        )
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True)
        await producer.start()
        units = registry_placement(settings.unit_registry())
        store = AggregatorStore(
            pool, settings.database_schema, units, exact_levels_since=settings.exact_level_changes_since
        )
        consumer = EventConsumer(settings, store, producer)
        level_cut = asyncio.create_task(drop_past_level_changes(store), name="aggregator-level-cut")
        task = asyncio.create_task(consumer.run(), name="aggregator-consumer")
        task.add_done_callback(_stop_process_unless_asked)
        app.state.pool = pool
        app.state.consumer = consumer
        app.state.consumer_task = task
        try:
            yield
        finally:
            level_cut.cancel()
            consumer.stop()  # finishes the batch in hand, then leaves the group
            try:
                await asyncio.wait_for(task, timeout=30)
            except TimeoutError:
                task.cancel()
            await producer.stop()
            await pool.close()

    return lifespan


def create_app(settings: AggregatorSettings | None = None) -> FastAPI:
    settings = settings or AggregatorSettings()
    lifespan = _lifespan(settings)

    app = FastAPI(title="tthc-pulse aggregator", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        task: asyncio.Task[None] = app.state.consumer_task
        if task.done():
            response.status_code = 503
            return {"status": "consumer stopped"}
        if not app.state.consumer.running:
            response.status_code = 503
            return {"status": "consumer starting"}
        stalled = [s.partition for s in app.state.consumer.partition_statuses() if s.stalled]
        if stalled:
            response.status_code = 503
            return {"status": f"partitions {stalled} make no progress with records waiting"}
        try:
            async with app.state.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, TimeoutError):
            response.status_code = 503
            return {"status": "database unreachable"}
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        if hasattr(app.state, "consumer"):
            app.state.consumer.update_progress_metrics()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
