"""Encryption of client contact data at rest, blind indexes, and keyed hashes of PINs/tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LOOKALIKES = str.maketrans("OILU", "011V")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


KEY_ID_BYTES = 4


def key_id(secret: str) -> bytes:
    """4 bytes naming a key without revealing it (derived, so it needs no storage of its own)."""
    return _derive(secret, b"pii-key-id-v1")[:KEY_ID_BYTES]


class PiiCipher:
    """AES-256-GCM with a random nonce; `blind_index` gives an equality-searchable keyed hash.

    Key rotation (design.md 3.5): ciphertexts are `\x02 + key id + nonce + ciphertext` under
    the current key; the retired keys still decrypt (by key id, and the `\x01` ciphertexts of
    the first format, which carry no id, by trying each key), and `blind_indexes` gives a
    value's index under every key so lookups find rows indexed before the rotation.
    """

    def __init__(self, secret: str, retired: Sequence[str] = ()) -> None:
        secrets_ = [secret, *(key for key in retired if key and key != secret)]
        self._aeads = {key_id(key): AESGCM(_derive(key, b"pii-encryption-v1")) for key in secrets_}
        self._index_keys = [_derive(key, b"pii-blind-index-v1") for key in secrets_]
        self.current_key_id = key_id(secret)

    def encrypt(self, plaintext: str) -> bytes:
        nonce = secrets.token_bytes(12)
        aead = self._aeads[self.current_key_id]
        return b"\x02" + self.current_key_id + nonce + aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        if blob and blob[0] == 2:
            aead = self._aeads.get(blob[1 : 1 + KEY_ID_BYTES])
            if aead is None:
                raise ValueError("ciphertext under a key that is neither current nor retired")
            body = blob[1 + KEY_ID_BYTES :]
            return aead.decrypt(body[:12], body[12:], None).decode()
        if blob and blob[0] == 1:
            for aead in self._aeads.values():  # the current key first
                try:
                    return aead.decrypt(blob[1:13], blob[13:], None).decode()
                except InvalidTag:
                    continue
            raise ValueError("ciphertext of the first format under none of the keys")
        raise ValueError("unknown ciphertext version")

    def is_current(self, blob: bytes) -> bool:
        """Whether `blob` is sealed under the current key in the current format."""
        return bytes(blob[: 1 + KEY_ID_BYTES]) == b"\x02" + self.current_key_id

    def blind_index(self, value: str) -> str:
        """The index stored with a new row: under the current key."""
        return self._index(self._index_keys[0], value)

    def blind_indexes(self, value: str) -> list[str]:
        """A value's index under the current key first, then under each retired key: what a
        lookup matches during a rotation, until the rekey job has rewritten the old rows."""
        return [self._index(key, value) for key in self._index_keys]

    @staticmethod
    def _index(key: bytes, value: str) -> str:
        normalised = value.strip().lower()
        return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


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

    Rotation (design.md 3.5): hashes are stored under the current pepper; `pin_hashes` and
    `token_hashes` give a secret's hash under every pepper (current first) for lookups, and a
    link MAC under any of them is accepted. PINs and tokens are not stored, so their hashes
    cannot be recomputed: a retired pepper stays needed until the last code issued under it
    has expired or been used.
    """

    def __init__(self, pepper: str, retired: Sequence[str] = ()) -> None:
        peppers = [pepper, *(old for old in retired if old and old != pepper)]
        self._keys = [_derive(old, b"survey-secret-v1") for old in peppers]
        self._key = self._keys[0]
        self._link_keys = [_derive(old, b"survey-link-mac-v1") for old in peppers]
        self._link_key = self._link_keys[0]
        self._address_key = _derive(pepper, b"network-address-v1")
        self._status_keys = [_derive(old, b"review-status-mac-v1") for old in peppers]

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
        if not any(
            hmac.compare_digest(mac.encode(), self._link_mac(signed, key).encode())
            for key in self._link_keys
        ):
            return None
        return invitation_id

    def _link_mac(self, signed: str, key: bytes | None = None) -> str:
        return _b64(hmac.new(key or self._link_key, signed.encode(), hashlib.sha256).digest())

    def status_token(self, review_id: str) -> str:
        """The lasting link token of a review's status page for its client: `<review id>.<MAC>`
        (no expiry: the client may look again months later). Invitations (which mails the
        thank-you) and reviews (which shows the page) derive the key from the same pepper."""
        if not review_id or LINK_SEPARATOR in review_id or len(review_id) > MAX_LINKED_ID:
            raise ValueError("a review id for a status link is 1-64 characters without '.'")
        return f"{review_id}{LINK_SEPARATOR}{self._status_mac(review_id, self._status_keys[0])}"

    def status_review(self, token: str) -> str | None:
        """The review a status token opens when its MAC is ours (under any pepper); else None."""
        review_id, separator, mac = token.rpartition(LINK_SEPARATOR)
        if not (separator and review_id and mac) or len(review_id) > MAX_LINKED_ID:
            return None
        if LINK_SEPARATOR in review_id:
            return None
        if not any(
            hmac.compare_digest(mac.encode(), self._status_mac(review_id, key).encode())
            for key in self._status_keys
        ):
            return None
        return review_id

    @staticmethod
    def _status_mac(review_id: str, key: bytes) -> str:
        return _b64(hmac.new(key, review_id.encode(), hashlib.sha256).digest())

    def address_hash(self, address: str) -> str:
        """A network address, compared without being stored (trust signals, design.md 3.3)."""
        return hmac.new(
            self._address_key, address.strip().lower().encode(), hashlib.sha256
        ).hexdigest()

    def pin_hash(self, pin: str) -> str:
        return self.pin_hashes(pin)[0]

    def pin_hashes(self, pin: str) -> list[str]:
        """The PIN's hash under the current pepper first, then under each retired one."""
        message = b"pin:" + normalise_pin(pin).encode()
        return [hmac.new(key, message, hashlib.sha256).hexdigest() for key in self._keys]

    def token_hash(self, token: str) -> str:
        return self.token_hashes(token)[0]

    def token_hashes(self, token: str) -> list[str]:
        """The token's hash under the current pepper first, then under each retired one."""
        message = b"token:" + token.encode()
        return [hmac.new(key, message, hashlib.sha256).hexdigest() for key in self._keys]
