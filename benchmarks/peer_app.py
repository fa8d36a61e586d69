"""The peer of benchmarks/peer_bench.py: a Quix Streams exactly-once application (a script).

It runs in its own environment (`.local/peer-venv`, made by peer_bench.py from the `bench`
dependency group of pyproject.toml) and imports nothing of the project: it is what a team would
write with Quix Streams for the subset of the aggregator's work that peer_bench.py documents.

    events topic (keyed by subject) ──▶ per key: dedupe by (source, id); latest-wins `received`
    and `resolved` facts of the dossier; the change of its counts per (unit, local day)
        ──group_by (unit, day)──▶ repartition topic ──▶ per (unit, day): running sums
        ──▶ counts topic (the latest message per key holds the totals)

Both steps keep their state in RocksDB with changelog topics, and `processing_guarantee=
"exactly-once"` commits input offsets, repartition and counts messages and changelogs in one Kafka
transaction per checkpoint (every `--commit-interval` seconds, Quix's default 5 s).

Usage: peer_app.py run --topic T --counts-topic C --group G --state-dir DIR
       peer_app.py forget --group G [G ...]   (deletes consumer groups)
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from quixstreams import Application, State

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
RECEIVED = "vn.gov.tthc.dossier.received"
RESOLVED = "vn.gov.tthc.dossier.resolved"
# Local days are days in Asia/Ho_Chi_Minh: UTC+07:00 all year (no daylight saving since 1975).
VIETNAM = timezone(timedelta(hours=7))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COUNTERS = ("received", "received_online", "resolved")

# A key's state: the identities seen, and the latest `received` fact [version, unit, day, online]
# and `resolved` fact [version, day], a version being [µs since the epoch, id, source] (the order
# the contract gives: time, then id, then source).
Counts = dict[tuple[str, str], list[int]]


def _micros(moment: str) -> int:
    return (datetime.fromisoformat(moment) - EPOCH) // timedelta(microseconds=1)


def _day(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(VIETNAM).date().isoformat()


def _counts(received: list[Any] | None, resolved: list[Any] | None) -> Counts:
    """What a dossier adds to the counts per (unit, day): nothing until its `received` arrives."""
    if received is None:
        return {}
    _version, unit, day, online = received
    counts: Counts = {(unit, day): [1, 1 if online else 0, 0]}
    if resolved is not None:
        counts.setdefault((unit, resolved[1]), [0, 0, 0])[2] += 1
    return counts


def dossier_step(event: dict[str, Any], state: State) -> list[dict[str, Any]]:
    """Dedupe, keep the latest facts, and return the change of the key's counts per (unit, day)."""
    identity = f"{event['source']}\x1f{event['id']}"
    record = state.get("s") or {"ids": [], "received": None, "resolved": None}
    if identity in record["ids"]:
        return []  # a resent event: already counted
    record["ids"].append(identity)
    kind = event["type"]
    changes: list[dict[str, Any]] = []
    if kind in (RECEIVED, RESOLVED):
        data = event["data"]
        version = [_micros(event["time"]), event["id"], event["source"]]
        before = _counts(record["received"], record["resolved"])
        fact = "received" if kind == RECEIVED else "resolved"
        current = record[fact]
        if current is None or version > current[0]:
            if kind == RECEIVED:
                record[fact] = [version, data["unit"], _day(data["received_at"]), data["channel"] == "online"]
            else:
                record[fact] = [version, _day(data["resolved_at"])]
            after = _counts(record["received"], record["resolved"])
            for key in before.keys() | after.keys():
                old, new = before.get(key, [0, 0, 0]), after.get(key, [0, 0, 0])
                delta = [n - o for n, o in zip(new, old, strict=True)]
                if any(delta):
                    changes.append({"unit": key[0], "day": key[1], "delta": delta})
    state.set("s", record)
    return changes


def count_step(change: dict[str, Any], state: State) -> dict[str, Any]:
    """Running totals of one (unit, day)."""
    totals = state.get("c") or [0, 0, 0]
    totals = [t + d for t, d in zip(totals, change["delta"], strict=True)]
    state.set("c", totals)
    return {"unit": change["unit"], "day": change["day"], **dict(zip(COUNTERS, totals, strict=True))}


def run(args: argparse.Namespace) -> None:
    app = Application(
        broker_address=KAFKA,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel=os.environ.get("PEER_LOG_LEVEL", "WARNING"),
    )
    events = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    counts = app.topic(args.counts_topic, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(events)
    sdf = sdf.apply(dossier_step, stateful=True, expand=True)
    sdf = sdf.group_by(lambda change: f"{change['unit']}|{change['day']}", name="unit_day")
    sdf = sdf.apply(count_step, stateful=True)
    sdf.to_topic(counts)
    app.run()  # until SIGTERM


def forget(args: argparse.Namespace) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.list_topics(timeout=10)  # connected first: a request sent before fails at once
    for future in admin.delete_consumer_groups(args.group, request_timeout=15).values():
        try:
            future.result()
        except KafkaException as error:
            # A group that never committed an offset is gone once its members left.
            if error.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--topic", required=True)
    runner.add_argument("--counts-topic", required=True)
    runner.add_argument("--group", required=True)
    runner.add_argument("--state-dir", required=True)
    runner.add_argument("--commit-interval", type=float, default=5.0, help="seconds between checkpoints")
    forgetter = commands.add_parser("forget")
    forgetter.add_argument("--group", required=True, nargs="+")
    args = parser.parse_args()
    run(args) if args.command == "run" else forget(args)


if __name__ == "__main__":
    main()
