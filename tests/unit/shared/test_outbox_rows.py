"""Outbox rows carry each event exactly as `encode` writes it, though a batch shares the work."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.cloudevents import encode
from shared.contracts import PARTICIPATION_CHANGED
from shared.contracts.participation import ParticipationMode
from shared.outbox import outbox_rows
from tests.support.builders import participation_changed


@given(
    ce_ids=st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=20)), max_size=5),
    source=st.text(min_size=1, max_size=20),
)
def test_each_row_is_what_encode_writes(ce_ids: list[str | None], source: str) -> None:
    # a time in another zone: written in UTC with a Z, as encode writes it
    at = datetime(2026, 11, 21, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    items = [
        participation_changed(f"A-{n}", ParticipationMode.OPT_IN_HIDDEN) for n in range(len(ce_ids))
    ]
    rows = outbox_rows(PARTICIPATION_CHANGED, items, source=source, time=at, ce_ids=ce_ids)
    assert len(rows) == len(items)
    for (topic, key, ce_id, ce_type, headers, payload), item, given_id in zip(
        rows, items, ce_ids, strict=True
    ):
        if given_id is None:
            assert uuid.UUID(ce_id).version == 4
        else:
            assert ce_id == given_id
        record = encode(
            PARTICIPATION_CHANGED.ce_type,
            item,
            source=source,
            key=item.agent_id,
            ce_id=ce_id,
            time=at,
        )
        assert (topic, ce_type) == (PARTICIPATION_CHANGED.topic, PARTICIPATION_CHANGED.ce_type)
        assert key.encode() == record.key
        assert payload == record.value
        assert json.loads(headers) == {
            name: value.decode() for name, value in record.headers.items()
        }


def test_fresh_ids_differ_and_a_wrong_model_or_id_count_is_refused() -> None:
    at = datetime(2026, 11, 21, tzinfo=UTC)
    rows = outbox_rows(
        PARTICIPATION_CHANGED,
        [participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN)] * 3,
        source="/t",
        time=at,
    )
    assert len({row[2] for row in rows}) == 3
    with pytest.raises(TypeError):
        outbox_rows(PARTICIPATION_CHANGED, [object()], source="/t", time=at)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="zip"):
        outbox_rows(
            PARTICIPATION_CHANGED,
            [participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN)],
            source="/t",
            time=at,
            ce_ids=[],
        )


def test_payloads_given_by_the_caller_are_used_as_they_are() -> None:
    at = datetime(2026, 11, 21, tzinfo=UTC)
    items = [
        participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN),
        participation_changed("A-2", ParticipationMode.OPT_IN_HIDDEN),
    ]
    payloads = [item.model_dump_json().encode() for item in items]
    rows = outbox_rows(PARTICIPATION_CHANGED, items, source="/t", time=at, payloads=payloads)
    assert [row[5] for row in rows] == payloads
    assert [row[5] for row in outbox_rows(PARTICIPATION_CHANGED, items, source="/t", time=at)] == (
        payloads
    )
    marked = outbox_rows(PARTICIPATION_CHANGED, items[:1], source="/t", time=at, payloads=[b"{}"])
    assert marked[0][5] == b"{}"  # not dumped again
    with pytest.raises(ValueError, match="zip"):
        outbox_rows(PARTICIPATION_CHANGED, items, source="/t", time=at, payloads=payloads[:1])
