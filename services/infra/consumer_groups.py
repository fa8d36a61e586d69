"""Who is in a consumer group, and whether they are this stack's.

Two stacks on one machine that reach the same broker with the same consumer group split the
partitions between their aggregators, and each then shows part of the figures. The aggregator's
Kafka client id names its host and process id, so `deploy/services.sh start` can ask Kafka who is
in the group and refuse to start beside members that are not its own processes:

    python -m services.infra.consumer_groups --bootstrap 127.0.0.1:9092 --group tthc-aggregator --own-pid 4242

Exit status 0: no other member; 1: members of another stack (the reason on stderr); 2: Kafka did
not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError, NoError, for_code
from aiokafka.protocol.admin import DescribeGroupsRequest_v1, DescribeGroupsRequest_v2
from aiokafka.protocol.api import Request

AGGREGATOR_CLIENT = "tthc-aggregator"
_CLIENT_ID = re.compile(r"^(?P<service>[\w.-]+)@(?P<host>[^:@\s]+):(?P<pid>\d+)$")
_GROUP_ID_NOT_FOUND = 69  # Kafka protocol error code: no such group, i.e. no member


def client_id(service: str = AGGREGATOR_CLIENT, *, host: str | None = None, pid: int | None = None) -> str:
    """The Kafka client id of this process: `service@host:pid`."""
    return f"{service}@{host or socket.gethostname()}:{pid if pid is not None else os.getpid()}"


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    client_host: str  # as the broker saw the connection, e.g. "/127.0.0.1"


@dataclass(frozen=True)
class Process:
    host: str
    pid: int


def process_of(member: Member, service: str = AGGREGATOR_CLIENT) -> Process | None:
    """The process a member's client id names, if it is one of `service`'s ids."""
    match = _CLIENT_ID.match(member.client_id)
    if match is None or match["service"] != service:
        return None
    return Process(match["host"], int(match["pid"]))


def foreign_members(members: Iterable[Member], own: Iterable[Process]) -> list[Member]:
    """The members that are none of our own processes. A member whose client id does not name a
    process (another program, another version) is foreign: it takes partitions all the same."""
    mine = set(own)
    return [m for m in members if process_of(m) not in mine]


def refusal(group: str, bootstrap: str, foreign: Sequence[Member]) -> str:
    who = ", ".join(f"{m.client_id} from {m.client_host.lstrip('/')}" for m in foreign)
    return (
        f"consumer group {group!r} on {bootstrap} already has {len(foreign)} member(s) that are not this "
        f"stack's aggregator ({who}). Another stack uses this group on this broker: started beside it, the "
        "two aggregators would split the partitions and each would count part of the events. Give this stack "
        "its own broker (KAFKA_PORT) or its own group (CONSUMER_GROUP), or stop the other stack first."
    )


class _DescribeGroups(Request[DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2]):  # type: ignore[misc]
    """DescribeGroups, at most v2: aiokafka 0.14 decodes a v3 answer with the v2 schema (it lacks
    `authorized_operations`) and drops the connection, so its admin describe_consumer_groups fails
    against Kafka 4."""

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(
        self, request_struct_class: type[DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2]
    ) -> DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2:
        return request_struct_class(self._groups)


async def describe_group(bootstrap_servers: str, group: str, *, attempts: int = 20) -> list[Member]:
    """The current members of a classic consumer group (none if the group does not exist)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await client.bootstrap()
    try:
        attempt = 1
        while True:
            try:
                return await _describe(client, group)
            except KafkaError as exc:
                # A fresh broker creates its offsets topic on the first lookup: the coordinator
                # is "not available" for a few seconds, then "loading".
                if not exc.retriable or attempt == attempts:
                    raise
            attempt += 1
            await asyncio.sleep(0.5)
    finally:
        await client.close()


async def _describe(client: AIOKafkaClient, group: str) -> list[Member]:
    coordinator = await client.coordinator_lookup(CoordinationType.GROUP, group)
    response = await client.send(coordinator, _DescribeGroups([group]))
    (described,) = response.to_object()["groups"]
    code = described["error_code"]
    if code == _GROUP_ID_NOT_FOUND:
        return []
    error = for_code(code)
    if error is not NoError:
        raise error(f"describing consumer group {group!r}")
    return [Member(m["member_id"], m["client_id"], m["client_host"]) for m in described["members"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refuse a consumer group that has members of another stack.")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--group", required=True, help="the aggregator's consumer group")
    parser.add_argument(
        "--own-pid", type=int, action="append", default=[], help="a process id of this stack's aggregator"
    )
    args = parser.parse_args(argv)
    host = socket.gethostname()
    try:
        members = asyncio.run(describe_group(args.bootstrap, args.group))
    except (KafkaError, OSError) as exc:
        sys.stderr.write(f"cannot ask Kafka at {args.bootstrap} about consumer group {args.group!r}: {exc}\n")
        return 2
    foreign = foreign_members(members, [Process(host, pid) for pid in args.own_pid])
    if foreign:
        sys.stderr.write(refusal(args.group, args.bootstrap, foreign) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
