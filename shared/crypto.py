"""Encryption of client contact data at rest, blind indexes, and keyed hashes of PINs/tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LOOKALIKES = str.maketrans("OILU", "011V")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


class PiiCipher:
    """AES-256-GCM with a random nonce; `blind_index` gives an equality-searchable keyed hash."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(_derive(secret, b"pii-encryption-v1"))
        self._index_key = _derive(secret, b"pii-blind-index-v1")

    def encrypt(self, plaintext: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return b"\x01" + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        if not blob or blob[0] != 1:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(blob[1:13], blob[13:], None).decode()

    def blind_index(self, value: str) -> str:
        normalised = value.strip().lower()
        return hmac.new(self._index_key, normalised.encode(), hashlib.sha256).hexdigest()


def new_pin(groups: int = 3, group_size: int = 4) -> str:
    """A human-typable PIN: Crockford base32, 12 symbols = 60 bits, e.g. `7K2M-QX4P-9TRB`."""
    symbols = "".join(secrets.choice(CROCKFORD) for _ in range(groups * group_size))
    return "-".join(symbols[i : i + group_size] for i in range(0, len(symbols), group_size))


def normalise_pin(text: str) -> str:
    """Accept what people type: any case, spaces or dashes, and O/I/L mistaken for 0/1."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    return cleaned.translate(_LOOKALIKES)


def new_token() -> str:
    """A random URL-safe token with 256 bits of entropy (unsubscribe links, and the survey links
    mailed before survey links carried their invitation: see `SecretHasher.link_token`)."""
    return _b64(secrets.token_bytes(32))


LINK_SEPARATOR = "."
"""Not in the URL-safe base64 alphabet: a token without it is a link of the first format."""

MAX_LINKED_ID = 64


class SecretHasher:
    """Keyed hash (HMAC-SHA256 with the token pepper) of PINs and tokens, and the MAC that lets
    a link token say which invitation it opens.

    A keyed hash, not argon2: reviews must find the invitation from the PIN alone, and a 60-bit
    PIN under a secret key cannot be brute-forced offline from a leaked table.
    """

    def __init__(self, pepper: str) -> None:
        self._key = _derive(pepper, b"survey-secret-v1")
        self._link_key = _derive(pepper, b"survey-link-mac-v1")

    def link_token(self, invitation_id: str) -> str:
        """A link token `<invitation id>.<128-bit nonce>.<HMAC-SHA256>` (URL-safe). The MAC
        (keyed from the pepper both invitations and reviews hold) lets reviews tell a genuine
        link whose invitation event has not arrived yet from a wrong one."""
        if not invitation_id or LINK_SEPARATOR in invitation_id:
            raise ValueError("an invitation id for a link must be non-empty and have no '.'")
        if len(invitation_id) > MAX_LINKED_ID:
            raise ValueError(f"an invitation id for a link has at most {MAX_LINKED_ID} characters")
        signed = f"{invitation_id}{LINK_SEPARATOR}{_b64(secrets.token_bytes(16))}"
        return f"{signed}{LINK_SEPARATOR}{self._link_mac(signed)}"

    def linked_invitation(self, token: str) -> str | None:
        """The invitation id a link token carries when its MAC is ours; None for a forged or
        altered token and for tokens of the first format (random, carrying nothing)."""
        signed, separator, mac = token.rpartition(LINK_SEPARATOR)
        invitation_id, inner, nonce = signed.partition(LINK_SEPARATOR)
        if not (separator and inner and invitation_id and nonce and mac):
            return None
        if len(invitation_id) > MAX_LINKED_ID or LINK_SEPARATOR in nonce:
            return None
        if not hmac.compare_digest(mac.encode(), self._link_mac(signed).encode()):
            return None
        return invitation_id

    def _link_mac(self, signed: str) -> str:
        return _b64(hmac.new(self._link_key, signed.encode(), hashlib.sha256).digest())

    def pin_hash(self, pin: str) -> str:
        return hmac.new(
            self._key, b"pin:" + normalise_pin(pin).encode(), hashlib.sha256
        ).hexdigest()

    def token_hash(self, token: str) -> str:
        return hmac.new(self._key, b"token:" + token.encode(), hashlib.sha256).hexdigest()
