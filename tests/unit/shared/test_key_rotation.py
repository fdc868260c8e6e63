"""Keys can rotate (docs/design.md 3.5): data sealed or hashed under a retired PII key or token
pepper stays readable and findable, new data is written under the current one."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from shared.crypto import PiiCipher, SecretHasher, _derive, key_id
from shared.settings import ServiceSettings

OLD, NEW, OTHER = "old-pii-key", "new-pii-key", "unrelated-key"


def _first_format(secret: str, plaintext: str) -> bytes:
    """A ciphertext as the code before rotation wrote it: `\\x01`, nonce, no key id."""
    nonce = secrets.token_bytes(12)
    aead = AESGCM(_derive(secret, b"pii-encryption-v1"))
    return b"\x01" + nonce + aead.encrypt(nonce, plaintext.encode(), None)


def test_new_ciphertexts_carry_the_current_key_id() -> None:
    sealed = PiiCipher(NEW, [OLD]).encrypt("ann@example.com")
    assert sealed[:5] == b"\x02" + key_id(NEW)
    assert len(key_id(NEW)) == 4 and key_id(NEW) != key_id(OLD)
    assert PiiCipher(NEW, [OLD]).is_current(sealed)
    assert not PiiCipher(OLD, [NEW]).is_current(sealed)


def test_a_retired_key_still_decrypts_both_formats() -> None:
    rotated = PiiCipher(NEW, [OLD])
    assert rotated.decrypt(PiiCipher(OLD).encrypt("by id")) == "by id"
    assert rotated.decrypt(_first_format(OLD, "first format")) == "first format"
    assert rotated.decrypt(_first_format(NEW, "first, current")) == "first, current"
    assert not rotated.is_current(_first_format(NEW, "x"))


def test_a_key_neither_current_nor_retired_decrypts_nothing() -> None:
    for blob in (PiiCipher(OLD).encrypt("x"), _first_format(OLD, "x")):
        with pytest.raises(ValueError, match=r"neither current nor retired|none of the keys"):
            PiiCipher(NEW, [OTHER]).decrypt(blob)


def test_blind_indexes_lead_with_the_current_key() -> None:
    rotated = PiiCipher(NEW, [OLD, OTHER])
    assert rotated.blind_indexes(" Ann@Example.com ") == [
        PiiCipher(NEW).blind_index("ann@example.com"),
        PiiCipher(OLD).blind_index("ann@example.com"),
        PiiCipher(OTHER).blind_index("ann@example.com"),
    ]
    assert rotated.blind_index("ann@example.com") == PiiCipher(NEW).blind_index("ann@example.com")
    assert PiiCipher(NEW, [NEW, ""]).blind_indexes("a") == [PiiCipher(NEW).blind_index("a")]


def test_hashes_under_a_retired_pepper_still_match() -> None:
    rotated = SecretHasher("new-pepper", ["old-pepper"])
    old = SecretHasher("old-pepper")
    assert rotated.pin_hash("7K2M-QX4P-9TRB") == SecretHasher("new-pepper").pin_hash("7k2mqx4p9trb")
    assert rotated.pin_hashes("7K2M-QX4P-9TRB")[1:] == [old.pin_hash("7K2M-QX4P-9TRB")]
    assert rotated.token_hashes("tok") == [
        SecretHasher("new-pepper").token_hash("tok"),
        old.token_hash("tok"),
    ]
    link = old.link_token("inv-1")
    assert rotated.linked_invitation(link) == "inv-1"
    assert SecretHasher("new-pepper").linked_invitation(link) is None
    assert old.linked_invitation(rotated.link_token("inv-2")) is None


def test_settings_build_the_rotating_cipher_and_hasher() -> None:
    settings = ServiceSettings(
        pii_key=NEW, pii_keys_retired=f" {OLD}, ,{OTHER}", token_peppers_retired="old-pepper"
    )
    assert settings.pii_cipher().decrypt(PiiCipher(OTHER).encrypt("x")) == "x"
    assert settings.secret_hasher().token_hashes("t")[1] == SecretHasher("old-pepper").token_hash(
        "t"
    )
    assert ServiceSettings().pii_cipher().blind_indexes("a") == [
        PiiCipher(ServiceSettings().pii_key).blind_index("a")
    ]


def _production(**overrides: Any) -> ServiceSettings:
    generated = {
        name: secrets.token_urlsafe(48) for name in ("auth_secret", "pii_key", "token_pepper")
    }
    return ServiceSettings(
        environment="production", kafka_security_protocol="SSL", **(generated | overrides)
    )


def test_production_accepts_generated_retired_secrets() -> None:
    settings = _production(
        pii_keys_retired=f"{secrets.token_urlsafe(48)},{secrets.token_urlsafe(48)}",
        token_peppers_retired=secrets.token_urlsafe(48),
    )
    assert len(settings.pii_cipher().blind_indexes("a")) == 3


@pytest.mark.parametrize(
    ("retired", "refusal"),
    [
        ("dev-only-pii-key-change-me", "PII_KEYS_RETIRED[2] is a value committed"),
        ("short", "PII_KEYS_RETIRED[2] is shorter than"),
    ],
)
def test_production_refuses_a_committed_or_short_retired_key(retired: str, refusal: str) -> None:
    good = secrets.token_urlsafe(48)
    with pytest.raises(ValidationError) as refused:
        _production(pii_keys_retired=f"{good},{retired}")
    assert refusal in str(refused.value)


def test_production_refuses_a_retired_secret_equal_to_another() -> None:
    shared = secrets.token_urlsafe(48)
    with pytest.raises(ValidationError) as refused:
        _production(token_pepper=shared, pii_keys_retired=shared)
    assert "TOKEN_PEPPER and PII_KEYS_RETIRED[1] are equal" in str(refused.value)
    with pytest.raises(ValidationError) as refused:
        _production(pii_keys_retired=shared, token_peppers_retired=shared)
    assert "PII_KEYS_RETIRED[1] and TOKEN_PEPPERS_RETIRED[1] are equal" in str(refused.value)
