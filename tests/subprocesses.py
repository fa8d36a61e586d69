"""The three services as real processes on free ports, with their own topics, group and schema."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import DATABASE_URL, KAFKA, unique

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceSet:
    """Intake, aggregator(s) and reporting sharing one topic, consumer group and schema."""

    log_dir: Path
    schema: str = field(default_factory=lambda: unique("e2e"))
    topic: str = field(default_factory=lambda: unique("events"))
    dead_letter_topic: str = field(default_factory=lambda: unique("dlq"))
    group: str = field(default_factory=lambda: unique("group"))
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=KAFKA,
            DATABASE_URL=DATABASE_URL,
            DATABASE_SCHEMA=self.schema,
            EVENTS_TOPIC=self.topic,
            DEAD_LETTER_TOPIC=self.dead_letter_topic,
            CONSUMER_GROUP=self.group,
            EVENTS_PARTITIONS="6",
            LOG_LEVEL="INFO",
        )
        env.update(extra)
        return env

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str, service: str, **extra: str) -> None:
        """Start `python -m services.<service>` as `name` and wait until it answers /readyz."""
        port = free_port()
        self.ports[name] = port
        port_variable = f"{service.upper()}_PORT"
        with (self.log_dir / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(**{port_variable: str(port)}, **extra),
            )
        self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise AssertionError(f"{name} exited: {self.log(name)[-3000:]}")
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            try:
                self.processes[name].wait(0.1)  # doubles as the polling interval
            except subprocess.TimeoutExpired:
                continue
        raise AssertionError(f"{name} not ready in {timeout}s: {self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.processes[name].send_signal(sig)

    def stop(self, name: str, timeout: float = 30) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def run_scenario(self, *options: str, timeout: float = 300) -> str:
        """`python -m scenario` against this stack (it waits for its figures up to `timeout` s);
        its output, after asserting that it exited 0."""
        command = [
            sys.executable,
            "-m",
            "scenario",
            "--intake",
            self.url("intake"),
            "--reporting",
            self.url("reporting"),
        ]
        command += [*options, "--timeout", str(timeout)]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3 * timeout)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        return result.stdout
