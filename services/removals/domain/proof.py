"""Proof documents for `prior_client` removals (docs/design.md §1.6): which files are accepted,
told by their bytes, never by the name or the content type the sender claims.

A closing statement or a listing agreement is a PDF or a scan (PNG, JPEG); anything else (an
HTML page, an office document with macros, an executable renamed `.pdf`) is refused, because a
coordinator opens what is stored here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from services.removals.domain.model import RemovalRejected

DEFAULT_MAX_PROOF_BYTES = 5 * 1024 * 1024
MAX_FILENAME_LENGTH = 200

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
"""The magic numbers of the accepted types (PDF 1.7 §7.5.2, PNG §5.2, JPEG's SOI marker)."""

ACCEPTED = tuple(media_type for _, media_type in SIGNATURES)

PDF_SEARCH_BYTES = 1024
"""PDF readers accept `%PDF-` anywhere in the first kilobyte (some generators put a few bytes
first); PNG and JPEG must start with theirs."""


@dataclass(frozen=True)
class ProofFile:
    """An accepted proof document: its bytes, the type its bytes show, and a safe name."""

    content: bytes
    media_type: str
    filename: str
    sha256: str

    @property
    def size(self) -> int:
        return len(self.content)


def sniffed_type(content: bytes) -> str | None:
    """The accepted media type `content` is, by its first bytes; None for any other."""
    for magic, media_type in SIGNATURES:
        if media_type == "application/pdf":
            if magic in content[:PDF_SEARCH_BYTES]:
                return media_type
        elif content.startswith(magic):
            return media_type
    return None


def safe_filename(name: str | None, media_type: str) -> str:
    """The sender's file name without any folder, control or quote characters (it goes into a
    `Content-Disposition` header), at most `MAX_FILENAME_LENGTH` long; `proof.<ext>` when none
    is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>;').strip(" .")
    if not cleaned:
        cleaned = f"proof.{media_type.rsplit('/', 1)[-1].replace('jpeg', 'jpg')}"
    return cleaned[-MAX_FILENAME_LENGTH:]


def accept_proof(content: bytes, filename: str | None, *, max_bytes: int) -> ProofFile:
    """The file as a proof document, or the reason it is refused (`proof_document_empty`,
    `proof_document_too_large`, `proof_document_type`)."""
    if not content:
        raise RemovalRejected("proof_document_empty", "the proof document is empty")
    if len(content) > max_bytes:
        raise RemovalRejected(
            "proof_document_too_large",
            f"the proof document is {len(content)} bytes; at most {max_bytes} are accepted",
        )
    media_type = sniffed_type(content)
    if media_type is None:
        raise RemovalRejected(
            "proof_document_type",
            "the proof document must be a PDF, PNG or JPEG file (told by its content)",
        )
    return ProofFile(
        content=content,
        media_type=media_type,
        filename=safe_filename(filename, media_type),
        sha256=hashlib.sha256(content).hexdigest(),
    )


@dataclass(frozen=True)
class ProofDocument:
    """A stored proof document without its bytes: what the record keeps (the name and the bytes
    go when the client is erased)."""

    document_id: str
    lead_id: str
    agent_id: str
    filename: str | None
    media_type: str
    size: int
    sha256: str
    uploaded_at: datetime
    erased_at: datetime | None = None


def check_attachable(document: ProofDocument | None, *, lead_id: str, agent_id: str) -> None:
    """A removal request may cite only a document uploaded for its own lead by its own agent;
    another's is answered as unknown, so ids cannot be probed."""
    if document is None or (document.lead_id, document.agent_id) != (lead_id, agent_id):
        raise RemovalRejected(
            "unknown_proof_document",
            "no proof document with this id was uploaded for this lead; upload it first",
        )


def may_read(document: ProofDocument, *, subject: str, is_coordinator: bool) -> bool:
    """Coordinators verify proof; the agent who uploaded it may see it again; no one else."""
    return is_coordinator or document.agent_id == subject
