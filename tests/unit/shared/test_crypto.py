import math
import re

import pytest

from shared.crypto import CROCKFORD, PiiCipher, SecretHasher, new_pin, new_token, normalise_pin


def test_pin_is_human_typable_with_at_least_50_bits() -> None:
    pin = new_pin()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", pin)
    assert set(pin.replace("-", "")) <= set(CROCKFORD)
    assert 12 * math.log2(len(CROCKFORD)) >= 50


def test_pins_differ() -> None:
    assert len({new_pin() for _ in range(1000)}) == 1000


def test_pin_normalisation_forgives_typing() -> None:
    assert normalise_pin("ab0c-1d2e ") == normalise_pin("ABOC1D2E") == "AB0C1D2E"
    assert normalise_pin("il") == "11"


def test_hashes_match_typed_variants_and_need_the_pepper() -> None:
    hasher = SecretHasher("pepper-one")
    pin = new_pin()
    assert hasher.pin_hash(pin) == hasher.pin_hash(pin.lower().replace("-", " "))
    assert hasher.pin_hash(pin) != SecretHasher("pepper-two").pin_hash(pin)
    token = new_token()
    assert len(token) >= 43
    assert hasher.token_hash(token) != hasher.pin_hash(token)


def test_cipher_round_trip_and_fresh_nonce() -> None:
    cipher = PiiCipher("key")
    first, second = cipher.encrypt("pat@example.com"), cipher.encrypt("pat@example.com")
    assert first != second
    assert b"pat@example.com" not in first
    assert cipher.decrypt(first) == "pat@example.com"


def test_cipher_refuses_another_key() -> None:
    blob = PiiCipher("key").encrypt("secret")
    with pytest.raises(Exception):  # noqa: B017,PT011 - cryptography's InvalidTag
        PiiCipher("other").decrypt(blob)


def test_blind_index_is_case_insensitive_and_keyed() -> None:
    cipher = PiiCipher("key")
    assert cipher.blind_index(" Pat@Example.com") == cipher.blind_index("pat@example.com")
    assert cipher.blind_index("pat@example.com") != PiiCipher("k2").blind_index("pat@example.com")


def test_a_link_token_names_its_invitation_under_our_mac() -> None:
    hasher = SecretHasher("pepper-one")
    token = hasher.link_token("6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60")
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token) and len(token) <= 200  # URL-safe, fits
    assert hasher.linked_invitation(token) == "6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60"
    assert hasher.token_hash(token) != hasher.token_hash(hasher.link_token("6f1c2a9e"))


def test_link_tokens_of_one_invitation_differ() -> None:
    hasher = SecretHasher("pepper-one")
    assert len({hasher.link_token("inv-1") for _ in range(100)}) == 100


def test_a_link_with_another_pepper_or_an_altered_part_is_not_ours() -> None:
    token = SecretHasher("pepper-two").link_token("inv-1")
    hasher = SecretHasher("pepper-one")
    assert hasher.linked_invitation(token) is None
    invitation_id, nonce, mac = hasher.link_token("inv-1").split(".")

    def altered(part: str) -> str:
        return part[:-1] + ("B" if part.endswith("A") else "A")

    for forged in (
        f"inv-2.{nonce}.{mac}",
        f"{invitation_id}.{altered(nonce)}.{mac}",
        f"{invitation_id}.{nonce}.{altered(mac)}",
        f"{invitation_id}.{nonce}.",
        f".{nonce}.{mac}",
        f"{invitation_id}.{nonce}",
        f"{invitation_id}.x.{nonce}.{mac}",
        f"{invitation_id}.{nonce}.{mac}é",
    ):
        assert hasher.linked_invitation(forged) is None, forged


def test_a_token_of_the_first_format_carries_no_invitation() -> None:
    assert SecretHasher("pepper-one").linked_invitation(new_token()) is None


@pytest.mark.parametrize("invitation_id", ["", "a.b", "x" * 65])
def test_a_link_needs_an_invitation_id_it_can_carry(invitation_id: str) -> None:
    with pytest.raises(ValueError, match="invitation id for a link"):
        SecretHasher("pepper-one").link_token(invitation_id)


def test_a_status_token_opens_its_review_only_under_our_pepper() -> None:
    hasher = SecretHasher("pepper-one")
    token = hasher.status_token("6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60")
    assert hasher.status_review(token) == "6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60"
    assert token == hasher.status_token("6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60")  # lasting
    assert SecretHasher("pepper-two").status_review(token) is None
    rotated = SecretHasher("pepper-two", retired=["pepper-one"])
    assert rotated.status_review(token) == "6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60"
    review_id, _, mac = token.rpartition(".")
    forged = [
        f"other-review.{mac}",
        f"{review_id}.{mac[:-1]}A" if not mac.endswith("A") else f"{review_id}.{mac[:-1]}B",
        review_id,
        f".{mac}",
        f"{review_id}.",
        f"a.{token}",
        "",
        hasher.link_token("6f1c2a9e-0d4b-4c8e-9a51-3b7f1e2d5c60"),  # a survey link is no status
    ]
    for wrong in forged:
        assert hasher.status_review(wrong) is None, wrong


def test_a_status_token_needs_a_plain_review_id() -> None:
    hasher = SecretHasher("pepper-one")
    for bad in ("", "a.b", "x" * 65):
        with pytest.raises(ValueError, match="status link"):
            hasher.status_token(bad)
