"""MODERATOR_EMAILS: the addresses told of a new dispute (comma-separated; empty: none)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.reviews.settings import ReviewsSettings


def test_no_moderator_address_by_default_so_no_mail() -> None:
    assert ReviewsSettings(environment="test").moderator_addresses == ()


def test_addresses_are_comma_separated_trimmed_and_listed_once() -> None:
    settings = ReviewsSettings(
        environment="test",
        moderator_emails=" mods@ratings.example,,lee@ratings.example, mods@ratings.example ",
    )
    assert settings.moderator_addresses == ("mods@ratings.example", "lee@ratings.example")


def test_an_entry_that_is_no_address_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="MODERATOR_EMAILS"):
        ReviewsSettings(environment="test", moderator_emails="mods@ratings.example, lee")


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATOR_EMAILS", "mods@ratings.example")
    assert ReviewsSettings(environment="test").moderator_addresses == ("mods@ratings.example",)
