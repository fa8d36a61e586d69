"""docs/asyncapi.yaml: generated from the event model, accepted by the official AsyncAPI parser, and
true of the records the intake writes (headers and payload)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services.intake.publisher import record_headers
from shared.events import event_adapter
from tests.conftest import KAFKA, unique
from tests.factories import received, resolved
from tests.in_process import intake_client
from tests.ops.kafka_records import read_records
from tools.asyncapi import TARGET, render

REPO = Path(__file__).resolve().parents[2]
PARSER_HOME = Path(os.environ.get("ASYNCAPI_PARSER_HOME", REPO / ".local/node"))
PARSER = REPO / "tools/asyncapi-parser/parse.mjs"


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(TARGET.read_text())
    return loaded


def _validator(document: dict[str, Any], ref: str) -> jsonschema.Draft7Validator:
    """A validator of the schema at `ref`, resolving the document's other components."""
    return jsonschema.Draft7Validator({**document, "$ref": ref})


def _parse(*paths: Path) -> tuple[int, list[dict[str, Any]]]:
    """The parser's exit code and its summary of each document (one node process for all)."""
    if not (PARSER_HOME / "node_modules/@asyncapi/parser").is_dir():
        pytest.fail(f"@asyncapi/parser is not installed in {PARSER_HOME}: run `make asyncapi-parser`")
    env = {**os.environ, "ASYNCAPI_PARSER_HOME": str(PARSER_HOME)}
    done = subprocess.run(["node", str(PARSER), *map(str, paths)], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_description_is_generated_from_the_models() -> None:
    assert TARGET.read_text() == render(), "docs/asyncapi.yaml is out of date: run python -m tools.asyncapi"


def test_the_asyncapi_parser_accepts_the_description(tmp_path: Path) -> None:
    # A small document with a dangling reference: the parser does refuse what is wrong.
    broken = {
        "asyncapi": "3.0.0",
        "info": {"title": "broken", "version": "1.0.0"},
        "channels": {"events": {"address": "t"}},
        "operations": {"send": {"action": "send", "channel": {"$ref": "#/channels/nowhere"}}},
    }
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    code, (summary, refused) = _parse(TARGET, tmp_path / "broken.yaml")
    assert code == 1, "the broken document fails the run"
    assert refused["errors"]

    assert summary["errors"] == [], summary
    assert summary["channels"] == ["tthc.events.v1", "tthc.events.dlq.v1"]
    event = next(m for m in summary["messages"] if m["id"] == "event")
    assert event["headers"] == ["content-type", "ce_specversion", "ce_id", "ce_source", "ce_type", "tthc-intake-time"]
    assert event["payloadOneOf"] == 15


@pytest.mark.integration
async def test_real_records_match_the_payload_and_header_schemas() -> None:
    topic = unique("events")
    dossier = unique("aa")
    sent = [received(dossier), resolved(dossier), {**received(unique("x")), "extension": "dropped"}]
    async with intake_client(
        kafka_bootstrap_servers=KAFKA, events_topic=topic, dead_letter_topic=unique("dlq"), events_partitions=2
    ) as client:
        response = await client.post(
            "/v1/events",
            content=json.dumps(sent),
            headers={"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"},
        )
        assert response.status_code == 202, response.text
    records = await read_records(KAFKA, topic)
    assert len(records) == len(sent)

    document = _document()
    message = document["components"]["messages"]["event"]
    payload = _validator(document, message["payload"]["$ref"])
    headers = _validator(document, "#/components/messages/event/headers")
    for record in records:
        payload.validate(json.loads(record.value))
        headers.validate({name: value.decode() for name, value in record.headers.items()})
    # The schemas do refuse what the aggregator would refuse.
    wrong = json.loads(records[0].value) | {"type": "vn.gov.tthc.dossier.teleported"}
    assert not payload.is_valid(wrong)
    assert not headers.is_valid({name: value.decode() for name, value in records[0].headers.items()} | {"ce_type": "x"})


def test_record_schemas_name_every_header_the_intake_writes() -> None:
    properties = _document()["components"]["messages"]["event"]["headers"]["properties"]
    event = event_adapter.validate_python(received("h-1"), strict=False)
    assert [name for name, _ in record_headers(event, 946_684_800_000)] == list(properties)
