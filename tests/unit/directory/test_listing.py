"""The search order and its keyset cursors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.directory.domain.listing import (
    BadCursor,
    SortKey,
    normalized_name_query,
    usable_id,
)
from shared.contracts.ratings import Status


def test_gold_before_silver_before_none_whatever_the_stars() -> None:
    gold = SortKey.of(Status.GOLD, 0, 0, "Zed", "A-3")
    silver = SortKey.of(Status.SILVER, 5, 9, "Amy", "A-2")
    none = SortKey.of(Status.NONE, 5, 9, "Aaron", "A-1")
    assert sorted([none, silver, gold]) == [gold, silver, none]


def test_within_a_status_more_stars_then_more_positive_reviews_then_name_then_id() -> None:
    keys = [
        SortKey.of(Status.SILVER, 4, 9, "Ann", "A-1"),
        SortKey.of(Status.SILVER, 5, 7, "Zoe", "A-2"),
        SortKey.of(Status.SILVER, 5, 8, "Yan", "A-3"),
        SortKey.of(Status.SILVER, 5, 7, "Bea", "A-5"),
        SortKey.of(Status.SILVER, 5, 7, "Bea", "A-4"),
    ]
    assert [k.agent_id for k in sorted(keys)] == ["A-3", "A-4", "A-5", "A-2", "A-1"]


# what an event's JSON can carry: no NUL (refused by the contracts), no lone surrogate (refused by
# the JSON parser)
TEXT_CHARACTERS = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])


@given(
    st.sampled_from(list(Status)),
    st.integers(0, 5),
    st.integers(0, 10_000),
    st.text(TEXT_CHARACTERS, max_size=200),
    st.text(
        TEXT_CHARACTERS,
        min_size=1,
        max_size=64,
    ),
)
def test_a_cursor_decodes_to_the_key_it_encodes(
    status: Status, stars: int, positive: int, name: str, agent_id: str
) -> None:
    key = SortKey.of(status, stars, positive, name, agent_id)
    assert SortKey.decode(key.encode()) == key


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", "", "W10", "WyJhIiwwLDAsIngiLCJ5Il0", "WzEsMCwwLCJ4IiwieSJd", "%%%"],
    ids=["garbage", "empty", "empty-list", "wrong-types", "positive-rank", "not-base64"],
)
def test_a_cursor_the_directory_did_not_write_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        SortKey.decode(cursor)


def test_a_name_search_ignores_case_and_extra_spaces_and_blank_means_none() -> None:
    assert normalized_name_query("  Dana   WHIT ") == "dana whit"
    assert normalized_name_query("   ") is None
    assert normalized_name_query(None) is None


def test_a_cursor_past_postgresql_integers_or_with_nul_is_refused() -> None:
    huge = SortKey(0, 0, -(2**40), "Ann", "A-1").encode()
    with_nul = SortKey(0, 0, 0, "A\x00nn", "A-1").encode()
    for cursor in (huge, with_nul):
        with pytest.raises(BadCursor):
            SortKey.decode(cursor)


def test_nul_in_a_search_is_a_space_in_names_and_nothing_in_ids() -> None:
    assert normalized_name_query("Dana\x00Whit") == "dana whit"
    assert usable_id("O-1\x00") is None
    assert usable_id("  ") is None
    assert usable_id(" O-1 ") == "O-1"
