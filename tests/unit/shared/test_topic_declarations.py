"""Every topic's configuration is declared in one place (shared/topics.py, docs/design.md 2.1)."""

from __future__ import annotations

from shared.topics import DAY_MS, OUTBOX_CURSOR_TOPIC, Topic, all_topic_specs, dlq

SPECS = {spec.name: spec for spec in all_topic_specs()}


def test_every_topic_has_a_dlq_and_nothing_else_is_declared() -> None:
    assert set(SPECS) == {*Topic, *(dlq(topic) for topic in Topic), OUTBOX_CURSOR_TOPIC}


def test_the_review_logs_are_kept_for_ever() -> None:
    for topic in (Topic.REVIEWS_PUBLISHED, Topic.REVIEWS_PUBLIC):
        config = SPECS[topic].config
        assert config["cleanup.policy"] == "delete"
        assert (config["retention.ms"], config["retention.bytes"]) == ("-1", "-1")


def test_the_latest_value_topics_are_compacted() -> None:
    compacted = {name for name, spec in SPECS.items() if spec.config["cleanup.policy"] == "compact"}
    assert compacted == {Topic.MLS_AGENTS, Topic.AGENTS_PARTICIPATION, Topic.RATINGS}


def test_every_other_topic_states_its_retention_and_has_no_size_limit() -> None:
    for name, spec in SPECS.items():
        if spec.config["cleanup.policy"] == "delete":
            assert "retention.ms" in spec.config, name
            assert spec.config["retention.bytes"] == "-1", name


def test_erasures_and_every_dlq_keep_30_days() -> None:
    thirty_days = str(30 * DAY_MS)
    assert SPECS[Topic.CLIENT_ERASURES].config["retention.ms"] == thirty_days
    for topic in Topic:
        assert SPECS[dlq(topic)].config["retention.ms"] == thirty_days


def test_inputs_and_internal_events_keep_90_days() -> None:
    for topic in (
        Topic.MLS_TRANSACTIONS,
        Topic.LEADS_ASSIGNED,
        Topic.INVITATIONS_EVENTS,
        Topic.REVIEWS_EVENTS,
        Topic.REMOVALS_EVENTS,
    ):
        assert SPECS[topic].config["retention.ms"] == str(90 * DAY_MS)


def test_partitions_and_min_insync_replicas_come_from_the_arguments() -> None:
    specs = {spec.name: spec for spec in all_topic_specs(partitions=12, min_insync_replicas=2)}
    assert specs[Topic.RATINGS].partitions == 12
    assert specs[dlq(Topic.RATINGS)].partitions == 1
    assert {spec.config["min.insync.replicas"] for spec in specs.values()} == {"2"}
