"""The AsyncAPI 3.0 document of the Kafka contract, generated from the code (docs/design.md 2.5).

FastStream's own generator (`faststream.specification.AsyncAPI`) writes the skeleton: servers,
channels, send/receive operations and the payload schemas, from a broker on which every event
type a service reads is a typed subscriber (`filter=` on `ce_type`, the handler's parameter
annotated with the contract's pydantic model) and every type it publishes a publisher with
`schema=`. That broker is built from the service's `EventDispatcher` (`@dispatcher.on(EVENT)`,
`EventDispatcher(..., publishes=...)`), the declarations beside the handlers, and is never
connected. FastStream's generator has no place for what a reader of this contract needs most
(its message model leaves headers, bindings and examples as TODO), so `contract_document` then
regroups it by topic and adds, from `shared.contracts`, `shared.topics` and
`shared.contracts.examples`: one message per CloudEvents type with the binary-mode headers, the
Kafka key, an example, and each topic's configuration, dead-letter topic and external parties.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from html import escape
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.site import get_asyncapi_html

from shared.contracts import EVENTS, EventType
from shared.contracts.examples import EXAMPLES
from shared.messaging import EventDispatcher
from shared.topics import DLQ_CONFIG, OUTBOX_CURSOR_TOPIC, TOPIC_CONFIG, Topic

SCHEMA_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"

EXTERNAL_PUBLISHERS: Mapping[str, tuple[str, ...]] = {
    Topic.MLS_AGENTS: ("the MLS",),
    Topic.MLS_TRANSACTIONS: ("the MLS",),
    Topic.LEADS_ASSIGNED: ("the lead/CRM system",),
}
"""Systems outside this repository that write a topic (docs/design.md 2.5)."""

EXTERNAL_SUBSCRIBERS: Mapping[str, tuple[str, ...]] = {
    Topic.RATINGS: ("downstream sites (an MLS's agent search, brokerage pages)",),
    Topic.REVIEWS_PUBLIC: ("downstream sites (an MLS's agent search, brokerage pages)",),
    Topic.AGENTS_PARTICIPATION: ("anyone",),
}
"""Readers outside this repository (README, For downstream consumers)."""

INTERNAL_TOPICS = frozenset(
    {
        Topic.REVIEWS_PUBLISHED,
        Topic.INVITATIONS_EVENTS,
        Topic.REVIEWS_EVENTS,
        Topic.REMOVALS_EVENTS,
        Topic.CLIENT_ERASURES,
    }
)
"""Topics between this system's services only (`reviews.published`: scoring alone, by ACL)."""

DLQ_REASONS = (
    "empty_value",
    "value_not_json",
    "data_not_object",
    "missing_cloudevents_headers",
    "invalid_cloudevent",
    "unsupported_specversion",
    "unsupported_content_type",
    "schema_validation_failed",
    "unsupported_type",
    "handler_failed",
)
"""Every `dlq_reason` a consumer writes (a unit test finds them all in the code)."""


def _of_type(ce_type: str) -> Callable[[KafkaMessage], Awaitable[bool]]:
    async def is_of_type(message: KafkaMessage) -> bool:
        return bool(message.headers.get("ce_type") == ce_type)

    return is_of_type


def _reader(event_type: EventType) -> Callable[..., Awaitable[None]]:
    """A handler signature for the generator: `(event: <the type's model>) -> None`."""

    async def read(event: Any) -> None:
        raise NotImplementedError("a specification broker is never started")

    read.__annotations__ = {"event": event_type.model, "return": None}
    read.__name__ = read.__qualname__ = event_type.ce_type
    return read


def specification_broker(dispatcher: EventDispatcher, servers: Sequence[str]) -> KafkaBroker:
    """A never-connected broker declaring what the service reads and publishes, with types."""
    broker = KafkaBroker(list(servers), apply_types=False)
    service = dispatcher.service
    for topic, event_types in dispatcher.consumed().items():
        subscriber = broker.subscriber(
            topic,
            group_id=service,
            title=f"{service}:receive:{topic}",
            description=f"{service} reads {topic}",
        )
        for event_type in event_types:
            subscriber(_reader(event_type), filter=_of_type(event_type.ce_type))
    for event_type in dispatcher.publishes:
        broker.publisher(
            event_type.topic,
            title=f"{service}:send:{event_type.topic}:{event_type.ce_type}",
            description=f"{service} publishes {event_type.ce_type} (through its outbox)",
            schema=event_type.model,
        )
    return broker


def _faststream_document(dispatcher: EventDispatcher, servers: Sequence[str]) -> dict[str, Any]:
    spec = AsyncAPI(
        specification_broker(dispatcher, servers),
        title=dispatcher.service,
        version=CONTRACT_VERSION,
        schema_version=SCHEMA_VERSION,
    ).to_specification()
    document: dict[str, Any] = spec.to_jsonable()
    return document


def _headers(ce_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in Kafka binary content mode (header values "
        "are UTF-8 strings).",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"],
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {
                "type": "string",
                "description": "Unique per event; a redelivery of the same id is a no-op.",
                "examples": ["7d1c9f3e-52b1-4c8e-9a35-0c6f7d9b2a41"],
            },
            "ce_source": {
                "type": "string",
                "description": "Who produced it: `/ratings/<service>` for this system's events.",
                "examples": ["/ratings/scoring"],
            },
            "ce_type": {"type": "string", "const": ce_type},
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened, RFC 3339 in UTC.",
                "examples": ["2026-11-24T09:30:00Z"],
            },
            "content-type": {"type": "string", "const": "application/json"},
            "ce_traceparent": {
                "type": "string",
                "description": "W3C trace context (CloudEvents distributed-tracing extension), "
                "when tracing is on; optional.",
            },
            "ce_tracestate": {
                "type": "string",
                "description": "W3C trace state, with ce_traceparent; optional.",
            },
        },
    }


def _message(event_type: EventType, schema_name: str) -> dict[str, Any]:
    model = event_type.model
    example = EXAMPLES[event_type.ce_type]
    key = str(getattr(example, event_type.key_field))
    summary = (model.__doc__ or event_type.ce_type).strip().splitlines()[0]
    return {
        "name": event_type.ce_type,
        "title": event_type.ce_type,
        "summary": summary,
        "description": f"Key: `{event_type.key_field}`. Readers ignore properties they do not "
        "know (producers may add optional ones) and validate the known ones.",
        "contentType": "application/json",
        "headers": _headers(event_type.ce_type),
        "payload": {"$ref": f"#/components/schemas/{schema_name}"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The event's `{event_type.key_field}`: order holds per key.",
                    "examples": [key],
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": event_type.ce_type,
                "headers": {
                    "ce_specversion": "1.0",
                    "ce_id": "7d1c9f3e-52b1-4c8e-9a35-0c6f7d9b2a41",
                    "ce_source": _source_of(event_type),
                    "ce_type": event_type.ce_type,
                    "ce_time": "2026-11-24T09:30:00Z",
                    "content-type": "application/json",
                },
                "payload": example.model_dump(mode="json"),
            }
        ],
    }


def _source_of(event_type: EventType) -> str:
    if event_type.topic in EXTERNAL_PUBLISHERS:
        return "/mls" if event_type.topic.startswith("mls.") else "/crm"
    return "/ratings/<service>"


def _topic_configuration(config: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"cleanup.policy": config.get("cleanup.policy", "delete").split(",")}
    if "retention.ms" in config:
        out["retention.ms"] = int(config["retention.ms"])
    return out


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead-letter",
        "title": "dead letter",
        "summary": "A record a consumer could not decode, validate or handle, kept as it came "
        "with headers saying why (`python -m shared.dlq` lists, shows and re-drives them).",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [
                "dlq_reason",
                "dlq_detail",
                "dlq_original_topic",
                "dlq_original_partition",
                "dlq_original_offset",
                "dlq_consumer",
            ],
            "properties": {
                "dlq_reason": {"type": "string", "examples": list(DLQ_REASONS)},
                "dlq_detail": {"type": "string", "description": "What was wrong, in words."},
                "dlq_original_topic": {"type": "string"},
                "dlq_original_partition": {"type": "string"},
                "dlq_original_offset": {"type": "string"},
                "dlq_consumer": {"type": "string", "description": "The service that gave up."},
                "dlq_at": {"type": "string", "format": "date-time"},
            },
            "additionalProperties": {
                "type": "string",
                "description": "The original record's headers (its ce_* attributes).",
            },
        },
        "payload": {"description": "The original record's value, byte for byte."},
    }


def contract_document(
    dispatchers: Sequence[EventDispatcher],
    *,
    title: str,
    description: str,
    servers: Sequence[str],
    whole_system: bool = False,
) -> dict[str, Any]:
    """One document for the services of `dispatchers` (one, or all of them): FastStream's,
    regrouped with one channel per topic and one message per CloudEvents type. `whole_system`
    adds every topic, the relays' cursor topic and who writes and reads each in the system."""
    generated = [(d, _faststream_document(d, servers)) for d in dispatchers]
    schemas: dict[str, Any] = {}
    document_servers: dict[str, Any] = {}
    for _, part in generated:
        schemas.update(part.get("components", {}).get("schemas", {}))
        document_servers.update(part.get("servers", {}))
    readers: dict[str, dict[str, list[EventType]]] = {}
    writers: dict[str, dict[str, list[EventType]]] = {}
    for dispatcher, part in generated:
        # who reads and writes what, as FastStream's operations say; the types, as declared
        for operation in part.get("operations", {}).values():
            channel = operation["channel"]["$ref"].split("/")[-1]
            address = part["channels"][channel]["address"]
            by = readers if operation["action"] == "receive" else writers
            by.setdefault(address, {}).setdefault(dispatcher.service, [])
        for topic, event_types in dispatcher.consumed().items():
            readers[topic][dispatcher.service] = event_types
        for event_type in dispatcher.publishes:
            writers[event_type.topic][dispatcher.service].append(event_type)

    topics = sorted(set(readers) | set(writers), key=_topic_order)
    if whole_system:
        topics = [str(topic) for topic in Topic]
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topics:
        carried = [event_type for event_type in EVENTS.values() if event_type.topic == topic]
        channel_messages = {}
        for event_type in carried:
            schema_name = event_type.model.__name__
            if schema_name not in schemas:  # a type none of these services reads or writes
                schemas[schema_name] = event_type.model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
                schemas.update(schemas[schema_name].pop("$defs", {}))
            messages[event_type.ce_type] = _message(event_type, schema_name)
            channel_messages[event_type.ce_type] = {
                "$ref": f"#/components/messages/{event_type.ce_type}"
            }
        publishers = [*EXTERNAL_PUBLISHERS.get(topic, ()), *sorted(writers.get(topic, {}))]
        subscribers = [*sorted(readers.get(topic, {})), *EXTERNAL_SUBSCRIBERS.get(topic, ())]
        if whole_system:
            publishers = [*EXTERNAL_PUBLISHERS.get(topic, ()), *_writers(topic, dispatchers)]
            subscribers = [*_readers(topic, dispatchers), *EXTERNAL_SUBSCRIBERS.get(topic, ())]
        channels[topic] = {
            "address": topic,
            "title": topic,
            "description": _channel_description(
                topic, publishers, subscribers, whole_system=whole_system
            ),
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "topicConfiguration": _topic_configuration(TOPIC_CONFIG[Topic(topic)]),
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
            "x-publishers": publishers,
            "x-subscribers": subscribers,
        }
        for service, event_types in sorted(readers.get(topic, {}).items()):
            operations[f"{service}.receive.{topic}"] = _operation(
                "receive", topic, event_types, f"{service} reads {topic}", group_id=service
            )
        for service, event_types in sorted(writers.get(topic, {}).items()):
            operations[f"{service}.send.{topic}"] = _operation(
                "send", topic, event_types, f"{service} publishes on {topic} (its outbox relay)"
            )

    messages["dead-letter"] = _dead_letter_message()
    channels["dead-letters"] = {
        "address": "{topic}.dlq",
        "title": "<topic>.dlq",
        "description": "Beside every topic: what its consumers could not decode, validate or "
        "handle after a bounded number of tries. One partition, kept 30 days.",
        "parameters": {
            "topic": {
                "enum": [str(topic) for topic in Topic],
                "description": "The topic the record was read from.",
            }
        },
        "messages": {"dead-letter": {"$ref": "#/components/messages/dead-letter"}},
        "bindings": {
            "kafka": {
                "partitions": 1,
                "topicConfiguration": _topic_configuration(DLQ_CONFIG),
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    for dispatcher in dispatchers:
        if dispatcher.subscribed:
            operations[f"{dispatcher.service}.send.dead-letters"] = {
                "action": "send",
                "channel": {"$ref": "#/channels/dead-letters"},
                "summary": f"{dispatcher.service} dead-letters what it cannot read or handle",
                "messages": [{"$ref": "#/channels/dead-letters/messages/dead-letter"}],
            }
    if whole_system:
        channels[OUTBOX_CURSOR_TOPIC] = {
            "address": OUTBOX_CURSOR_TOPIC,
            "title": OUTBOX_CURSOR_TOPIC,
            "description": "Never written: each service's outbox relay commits its position "
            "on it as a consumer-group offset, in the Kafka transaction that publishes its "
            "events (exactly once on the topic, across relay crashes).",
            "messages": {},
        }

    return {
        "asyncapi": SCHEMA_VERSION,
        "info": {
            "title": title,
            "version": CONTRACT_VERSION,
            "description": description,
        },
        "defaultContentType": "application/json",
        "servers": document_servers,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def _topic_order(topic: str) -> int:
    order = [str(t) for t in Topic]
    return order.index(topic) if topic in order else len(order)


def _writers(topic: str, dispatchers: Sequence[EventDispatcher]) -> list[str]:
    return [d.service for d in dispatchers if any(e.topic == topic for e in d.publishes)]


def _readers(topic: str, dispatchers: Sequence[EventDispatcher]) -> list[str]:
    return [d.service for d in dispatchers if topic in d.subscribed]


def _channel_description(
    topic: str, publishers: list[str], subscribers: list[str], *, whole_system: bool
) -> str:
    internal = " Internal: between this system's services only." if topic in INTERNAL_TOPICS else ""
    if topic == Topic.REVIEWS_PUBLISHED:
        internal += " Kafka ACLs let only the scoring service read it."
    view = (
        ""
        if whole_system
        else " (This service's part of the contract; the system's document names every "
        "publisher and reader.)"
    )
    return (
        f"Published by {', '.join(publishers) or 'another service of this system'}; "
        f"read by {', '.join(subscribers) or 'other services of this system'}."
        f"{internal}{view}"
    )


def _operation(
    action: str,
    topic: str,
    event_types: Sequence[EventType],
    summary: str,
    *,
    group_id: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{topic}"},
        "summary": summary,
        "messages": [
            {"$ref": f"#/channels/{topic}/messages/{event_type.ce_type}"}
            for event_type in event_types
        ],
    }
    if group_id is not None:
        operation["bindings"] = {
            "kafka": {
                "groupId": {"type": "string", "const": group_id},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        }
    return operation


class Document:
    """A finished document, as FastStream's HTML page takes it."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.content = content

    @property
    def title(self) -> str:
        return str(self.content["info"]["title"])

    def to_jsonable(self) -> Any:
        return self.content

    def to_json(self) -> str:
        return json.dumps(self.content, indent=2, ensure_ascii=False) + "\n"

    def to_yaml(self) -> str:
        """YAML 1.2 is a superset of JSON: the JSON text is the document in YAML's flow style,
        without a YAML library in the services' runtime."""
        return self.to_json()

    def to_html(self, json_url: str) -> str:
        """FastStream's page (the AsyncAPI React component, loaded from unpkg.com), with a link
        to the JSON and a plain summary of the topics, which the component replaces when it
        loads: without the CDN the page still says what is on each topic."""
        page = get_asyncapi_html(self, try_it_out_path=None)
        link = (
            f'<p style="font-family:sans-serif;margin:8px 16px">The document as '
            f'<a href="{escape(json_url)}">JSON</a> (this page draws it with the AsyncAPI React '
            "component from unpkg.com).</p>"
        )
        page = page.replace("<body>", f"<body>\n{link}", 1)
        return page.replace(
            '<div id="asyncapi"></div>', f'<div id="asyncapi">{self._summary()}</div>', 1
        )

    def _summary(self) -> str:
        rows = []
        for channel in self.content["channels"].values():
            types = ", ".join(escape(name) for name in channel.get("messages", {}))
            rows.append(
                f"<tr><td><code>{escape(channel['address'])}</code></td><td>{types}</td>"
                f"<td>{escape(channel.get('description', ''))}</td></tr>"
            )
        return (
            '<table style="font-family:sans-serif;margin:8px 16px;border-collapse:collapse">'
            "<thead><tr><th>topic</th><th>CloudEvents types</th><th>who</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
