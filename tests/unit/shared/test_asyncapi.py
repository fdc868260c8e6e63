"""The AsyncAPI document: complete, consistent, current, and served by every service."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import shared.contracts as contracts
from devtools.asyncapi import DOC_DIR, dispatchers, render_documents
from shared.asyncapi import DLQ_REASONS, contract_document
from shared.contracts import EVENTS, EventType
from shared.contracts.examples import EXAMPLES
from shared.messaging import EventDispatcher

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(json.loads(render_documents()["asyncapi.json"]))


def _readme_table() -> dict[str, list[str]]:
    """Topic -> its row's cells, from the README's topic table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Topics\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("`"):
            continue
        topic = re.match(r"`([^`]+)`", cells[0])
        assert topic is not None
        rows[topic.group(1)] = cells
    return rows


def _readme_topics() -> dict[str, set[str]]:
    """Topic -> CloudEvents types, from the README's topic table."""
    return {
        topic: set(re.findall(r"`([a-z.]+\.v\d+)`", cells[2]))
        for topic, cells in _readme_table().items()
    }


def test_the_services_reading_each_topic_are_those_the_readme_names(
    document: dict[str, Any],
) -> None:
    services = {dispatcher.service for dispatcher in dispatchers()}
    for topic, cells in _readme_table().items():
        named = {service for service in services if re.search(rf"\b{service}\b", cells[4])}
        channel = document["channels"].get(topic, {})
        reading = set(channel.get("x-subscribers", ())) & services
        assert reading == named, topic


def test_the_committed_export_is_current() -> None:
    committed = {path.name: path.read_text() for path in DOC_DIR.iterdir()}
    assert committed == render_documents(), "run `make asyncapi` and commit docs/asyncapi/"


def test_every_topic_of_the_readme_table_is_a_channel_with_its_types(
    document: dict[str, Any],
) -> None:
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    readme = _readme_topics()
    assert len(readme) == 12
    for topic, types in readme.items():
        assert topic in channels, topic
        assert set(channels[topic]["messages"]) == types, topic


def test_every_message_has_cloudevents_headers_a_key_a_schema_and_a_valid_example(
    document: dict[str, Any],
) -> None:
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    for event_type in EVENTS.values():
        message = messages[event_type.ce_type]
        headers = message["headers"]["properties"]
        assert headers["ce_type"]["const"] == event_type.ce_type
        assert {"ce_id", "ce_source", "ce_specversion", "ce_time", "ce_traceparent"} <= set(headers)
        assert set(message["headers"]["required"]) >= {"ce_id", "ce_type", "ce_specversion"}
        schema_name = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert schema_name == event_type.model.__name__
        assert all("description" in p for p in schemas[schema_name]["properties"].values())
        (example,) = message["examples"]
        assert example["headers"]["ce_type"] == event_type.ce_type
        model = event_type.model.model_validate(example["payload"])
        key = example["payload"][event_type.key_field]
        assert message["bindings"]["kafka"]["key"]["examples"] == [key]
        assert model == EXAMPLES[event_type.ce_type]


def test_there_is_an_example_for_every_event_type_and_no_other() -> None:
    assert set(EXAMPLES) == {event_type.ce_type for event_type in EVENTS.values()}
    for event_type in EVENTS.values():
        assert type(EXAMPLES[event_type.ce_type]) is event_type.model


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def resolve(pointer: str) -> Any:
        node: Any = document
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for item in node for ref in refs(item)]
        return []

    pointers = refs(document)
    assert len(pointers) > 50
    for pointer in pointers:
        resolve(pointer)  # KeyError when it points nowhere


def test_who_publishes_and_who_reads_each_topic(document: dict[str, Any]) -> None:
    channels = document["channels"]
    assert channels["ratings"]["x-publishers"] == ["scoring"]
    assert channels["ratings"]["x-subscribers"][0] == "directory"
    assert channels["reviews.published"]["x-subscribers"] == ["scoring"]
    assert channels["mls.transactions"]["x-publishers"] == ["the MLS"]
    operations = document["operations"]
    assert operations["scoring.receive.reviews.published"]["action"] == "receive"
    assert operations["scoring.send.ratings"]["action"] == "send"
    assert operations["reviews.send.reviews.public"]["messages"] == [
        {"$ref": "#/channels/reviews.public/messages/review.published.v1"},
        {"$ref": "#/channels/reviews.public/messages/review.withdrawn.v1"},
    ]
    for name, operation in operations.items():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[1]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/"), name


def _constants_named_in(package: Path) -> set[str]:
    names = {name for name, value in vars(contracts).items() if isinstance(value, EventType)}
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and node.id in names:
                found.add(node.id)
    return found


@pytest.mark.parametrize("dispatcher", dispatchers(), ids=lambda d: d.service)
def test_a_service_declares_exactly_the_event_types_it_publishes(
    dispatcher: EventDispatcher,
) -> None:
    """Every contract constant a service's code names is one it handles or one it declares it
    publishes: publishing a new type without declaring it fails here."""
    named = _constants_named_in(ROOT / "services" / dispatcher.service)
    constant = {id(value): name for name, value in vars(contracts).items()}
    published = {constant[id(event_type)] for event_type in dispatcher.publishes}
    handled = {
        constant[id(event_type)]
        for event_types in dispatcher.consumed().values()
        for event_type in event_types
        if event_type.ce_type in dispatcher.handlers
    }
    assert published <= named
    assert named - handled <= published


def test_every_dead_letter_reason_in_the_code_is_documented() -> None:
    written = set()
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        written |= set(re.findall(r'InvalidEvent\(\s*"([a-z_]+)"', path.read_text()))
        if path.name != "asyncapi.py":
            written |= set(re.findall(r'^\s*"(handler_failed)",$', path.read_text(), re.M))
    assert written == set(DLQ_REASONS)


def test_a_service_document_shows_only_what_that_service_reads_and_writes() -> None:
    scoring = next(d for d in dispatchers() if d.service == "scoring")
    document = contract_document(
        [scoring], title="scoring", description="", servers=["kafka-1:9092", "kafka-2:9092"]
    )
    topics = {c["address"] for c in document["channels"].values()}
    assert topics == {"mls.agents", "agents.participation", "reviews.published", "ratings"} | {
        "{topic}.dlq"
    }
    assert {s["host"] for s in document["servers"].values()} == {"kafka-1:9092", "kafka-2:9092"}
    assert "scoring.send.ratings" in document["operations"]


async def test_each_service_serves_its_document_as_json_yaml_and_a_page() -> None:
    from services.scoring.app import create_app

    app = create_app()  # the lifespan is not run: the document needs neither Kafka nor a database
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
        as_json = await client.get("/asyncapi")
        as_yaml = await client.get("/asyncapi.yaml")
        page = await client.get("/asyncapi.html")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()["asyncapi"] == "3.0.0"
    assert "ratings" in as_json.json()["channels"]
    assert as_yaml.headers["content-type"] == "application/yaml"
    assert json.loads(as_yaml.text) == as_json.json()  # JSON text is YAML (flow style)
    assert page.status_code == 200
    assert '<a href="/asyncapi.json">JSON</a>' in page.text
    assert "AsyncApiStandalone.render" in page.text
    # without the CDN's script the page still lists the topics and their types
    assert "<td><code>ratings</code></td><td>rating.updated.v1</td>" in page.text
