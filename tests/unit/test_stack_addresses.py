"""One source of truth for a stack's addresses: the variables that place the servers place the
services' clients and the simulator's targets. Runs the deploy scripts' address derivation only
(`deploy/services.sh env` starts nothing and connects to nothing)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from scenario.__main__ import _parse_args
from services.aggregator.config import AggregatorSettings
from services.intake.config import IntakeSettings

REPO = Path(__file__).resolve().parents[2]
# Variables of the caller's shell that would change what the scripts derive.
_ADDRESS_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_PORT", "KAFKA_NODES", "KAFKA_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS",
    "DATABASE_URL", "PG_PORT", "INTAKE_PORT", "REPORTING_PORT", "AGGREGATOR_PORT", "CONSUMER_GROUP",
)  # fmt: skip


def stack_env(**variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ADDRESS_VARIABLES} | variables
    return subprocess.run(
        [str(REPO / "deploy/services.sh"), "env"], env=env, capture_output=True, text=True, timeout=30
    )


def derived(**variables: str) -> dict[str, str]:
    done = stack_env(**variables)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_defaults_are_the_single_broker_stack() -> None:
    env = derived()
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["DATABASE_URL"] == "postgresql://tthc:tthc@127.0.0.1:5433/tthc"
    assert (env["INTAKE_PORT"], env["REPORTING_PORT"], env["AGGREGATOR_PORT"]) == ("8001", "8002", "8003")
    assert env["CONSUMER_GROUP"] == AggregatorSettings().consumer_group
    assert env["KAFKA_REPLICATION_FACTOR"] == ""  # the services' own default, 1


def test_a_second_stack_needs_only_other_ports() -> None:
    env = derived(KAFKA_PORT="9094", PG_PORT="5434", INTAKE_PORT="8101", REPORTING_PORT="8102", AGGREGATOR_PORT="8103")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9094"
    assert env["DATABASE_URL"] == "postgresql://tthc:tthc@127.0.0.1:5434/tthc"
    assert (env["INTAKE_PORT"], env["REPORTING_PORT"], env["AGGREGATOR_PORT"]) == ("8101", "8102", "8103")


def test_a_cluster_is_reached_through_all_its_brokers_and_replicates_the_services_topics() -> None:
    env = derived(KAFKA_NODES="3", KAFKA_PORT="29092")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert (env["KAFKA_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")


def test_an_explicit_address_wins_when_it_agrees() -> None:
    env = derived(KAFKA_BOOTSTRAP_SERVERS="10.0.0.5:9092", DATABASE_URL="postgresql://u:p@db:5432/x")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "10.0.0.5:9092"
    assert env["DATABASE_URL"] == "postgresql://u:p@db:5432/x"
    agreeing = derived(KAFKA_PORT="9094", KAFKA_BOOTSTRAP_SERVERS="localhost:9094,127.0.0.1:9096")
    assert agreeing["KAFKA_BOOTSTRAP_SERVERS"] == "localhost:9094,127.0.0.1:9096"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"KAFKA_PORT": "9094", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}, "KAFKA_PORT=9094"),
        ({"KAFKA_NODES": "3", "KAFKA_PORT": "29092", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}, "KAFKA_PORT=29092"),
        ({"PG_PORT": "5434", "DATABASE_URL": "postgresql://tthc:tthc@127.0.0.1:5433/tthc"}, "PG_PORT=5434"),
    ],
    ids=["broker", "cluster", "postgres"],
)
def test_an_explicit_address_that_contradicts_the_port_is_refused(variables: dict[str, str], named: str) -> None:
    # The reported bug: a second stack's broker on 9094, its services still on 9092.
    done = stack_env(**variables)
    assert done.returncode != 0
    assert named in done.stderr and "unset one of them" in done.stderr


def test_the_simulator_targets_the_services_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTAKE_URL", "REPORTING_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTAKE_PORT", "8101")
    monkeypatch.setenv("REPORTING_PORT", "8102")
    args = _parse_args([])
    assert (args.intake, args.reporting) == ("http://127.0.0.1:8101", "http://127.0.0.1:8102")
    monkeypatch.setenv("INTAKE_URL", "http://intake.example:80")
    assert _parse_args([]).intake == "http://intake.example:80"
    assert _parse_args(["--reporting", "http://r:1"]).reporting == "http://r:1"


def test_the_services_default_group_is_the_one_the_check_asks_about() -> None:
    script = (REPO / "deploy/services.sh").read_text()
    match = re.search(r'CONSUMER_GROUP="\$\{CONSUMER_GROUP:-([^}]+)\}"', script)
    assert match is not None
    assert match[1] == AggregatorSettings().consumer_group


def test_topic_replication_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    single = IntakeSettings()
    assert (single.kafka_replication_factor, single.kafka_min_insync_replicas) == (1, 1)
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    cluster = AggregatorSettings()
    assert (cluster.kafka_replication_factor, cluster.kafka_min_insync_replicas) == (3, 2)
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "1")
    with pytest.raises(ValidationError, match="KAFKA_MIN_INSYNC_REPLICAS=2 exceeds KAFKA_REPLICATION_FACTOR=1"):
        AggregatorSettings()
