"""Private Kafka and PostgreSQL servers for tests that restart them, started with the project's
own scripts on their own ports so the shared servers stay up."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class PrivateServer:
    def __init__(self, script: str, env: dict[str, str], home: Path) -> None:
        self._script = REPO / "deploy" / script
        # The scripts derive the addresses from their own variables; an exported address of the
        # shared servers must not leak into a private one.
        shared = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
        self._env = {**{k: v for k, v in os.environ.items() if k not in shared}, **env}
        self.home = home

    def run(self, *command: str) -> str:
        done = subprocess.run([str(self._script), *command], env=self._env, capture_output=True, text=True, timeout=240)
        if done.returncode != 0:
            raise AssertionError(f"{self._script.name} {' '.join(command)} failed: {done.stderr[-3000:]}")
        return done.stdout.strip()

    def start(self) -> None:
        self.run("start")

    def stop(self) -> None:
        self.run("stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def private_kafka(port: int) -> tuple[PrivateServer, str]:
    home = Path(tempfile.mkdtemp(prefix="tthc-kafka-"))
    server = PrivateServer(
        "kafka.sh",
        {
            "KAFKA_HOME": str(home),
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(port + 1),
            "KAFKA_LIBS": str(REPO / ".local/kafka/libs"),
        },
        home,
    )
    server.start()
    return server, f"127.0.0.1:{port}"


def private_kafka_cluster(port: int, heap: str = "384m") -> tuple[PrivateServer, str]:
    """Three KRaft nodes (deploy/kafka-cluster.sh) on client ports port, port+2, port+4 (controllers +1),
    topics replicated 3 times with min.insync.replicas=2."""
    home = Path(tempfile.mkdtemp(prefix="tthc-kafka-cluster-"))
    server = PrivateServer(
        "kafka-cluster.sh",
        {
            "KAFKA_HOME": str(home),
            "KAFKA_PORT": str(port),
            "KAFKA_NODES": "3",
            "KAFKA_REPLICATION_FACTOR": "3",
            "KAFKA_MIN_INSYNC_REPLICAS": "2",
            "KAFKA_LIBS": str(REPO / ".local/kafka/libs"),
            "KAFKA_HEAP": heap,
            # Short-lived brokers on a small machine: the client compiler alone starts them sooner.
            "KAFKA_OPTS": "-XX:TieredStopAtLevel=1",
        },
        home,
    )
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server, server.run("bootstrap")


def private_postgres(port: int) -> tuple[PrivateServer, str]:
    home = Path(tempfile.mkdtemp(prefix="tthc-pg-"))
    os.chmod(home, 0o755)
    server = PrivateServer("postgres.sh", {"PG_HOME": str(home), "PG_PORT": str(port)}, home)
    server.start()
    return server, server.run("url")
