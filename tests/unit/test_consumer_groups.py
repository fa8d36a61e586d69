"""Telling this stack's aggregator members of a consumer group from another stack's (pure)."""

from __future__ import annotations

import os
import socket

import pytest

from services.infra.consumer_groups import Member, Process, client_id, foreign_members, process_of, refusal

HOST = "stack-a"


def member(client: str) -> Member:
    return Member(member_id=f"{client}-5f0c", client_id=client, client_host="/127.0.0.1")


def test_a_client_id_names_the_process() -> None:
    assert client_id(host="h", pid=42) == "tthc-aggregator@h:42"
    assert process_of(member(client_id())) == Process(socket.gethostname(), os.getpid())
    assert process_of(member("tthc-aggregator@some.host-1:7")) == Process("some.host-1", 7)


@pytest.mark.parametrize(
    "client",
    ["aiokafka-0.14.0", "tthc-intake@stack-a:100", "tthc-aggregator@stack-a", "tthc-aggregator@stack-a:x", ""],
    ids=["default aiokafka id", "another service", "no pid", "bad pid", "empty"],
)
def test_an_id_that_names_no_aggregator_process_is_nobody_of_ours(client: str) -> None:
    assert process_of(member(client)) is None
    assert foreign_members([member(client)], [Process(HOST, 100)]) == [member(client)]


@pytest.mark.parametrize(
    ("clients", "own", "foreign"),
    [
        ([], [], []),
        (["tthc-aggregator@stack-a:100"], [Process(HOST, 100)], []),
        # The recorded pid of an instance that died: its membership lingers until its session ends.
        (["tthc-aggregator@stack-a:100", "tthc-aggregator@stack-a:200"], [Process(HOST, 100), Process(HOST, 200)], []),
        (["tthc-aggregator@stack-a:300"], [Process(HOST, 100)], ["tthc-aggregator@stack-a:300"]),
        # Another stack's aggregator: nothing of ours runs (no pid recorded).
        (["tthc-aggregator@stack-a:300"], [], ["tthc-aggregator@stack-a:300"]),
        # The same pid on another host (a container) is another process.
        (["tthc-aggregator@stack-b:100"], [Process(HOST, 100)], ["tthc-aggregator@stack-b:100"]),
        (
            ["tthc-aggregator@stack-a:100", "tthc-aggregator@stack-a:300", "aiokafka-0.14.0"],
            [Process(HOST, 100)],
            ["tthc-aggregator@stack-a:300", "aiokafka-0.14.0"],
        ),
    ],
    ids=["empty group", "ours", "ours and a dead one of ours", "another pid", "nothing of ours", "other host", "mixed"],
)
def test_foreign_members(clients: list[str], own: list[Process], foreign: list[str]) -> None:
    assert [m.client_id for m in foreign_members([member(c) for c in clients], own)] == foreign


def test_the_refusal_says_why_and_what_to_change() -> None:
    message = refusal("tthc-aggregator", "127.0.0.1:9092", [member("tthc-aggregator@stack-b:300")])
    assert "'tthc-aggregator' on 127.0.0.1:9092" in message
    assert "tthc-aggregator@stack-b:300 from 127.0.0.1" in message
    assert "Another stack uses this group on this broker" in message
    assert "KAFKA_PORT" in message and "CONSUMER_GROUP" in message
