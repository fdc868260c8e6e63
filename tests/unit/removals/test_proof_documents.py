"""Which proof documents are accepted: told by their bytes, at most the limit, named safely."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.removals.domain.model import RemovalRejected
from services.removals.domain.proof import (
    ProofDocument,
    accept_proof,
    check_attachable,
    may_read,
    safe_filename,
    sniffed_type,
)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
DOCUMENT = ProofDocument(
    "D-1",
    "L-1",
    "A-1",
    "closing.pdf",
    "application/pdf",
    10,
    "ab",
    datetime(2026, 1, 1, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (PDF, "application/pdf"),
        (b"\xef\xbb\xbf" + PDF, "application/pdf"),  # a few bytes before the header
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"\xff\xd8\xff\xe1\x00\x18Exif", "image/jpeg"),
    ],
)
def test_pdf_png_and_jpeg_are_told_by_their_first_bytes(content: bytes, media_type: str) -> None:
    assert sniffed_type(content) == media_type


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><script>",
        b"GIF89a\x01\x00",
        b"PK\x03\x04 a .docx is a zip",
        b"MZ\x90\x00",
        b"\x00" * 2048 + b"%PDF-1.7",  # past the first kilobyte: not a PDF a reader opens
        b" \x89PNG\r\n\x1a\n",  # PNG must start with its signature
    ],
)
def test_anything_else_is_no_accepted_type(content: bytes) -> None:
    assert sniffed_type(content) is None


def test_a_file_is_accepted_with_its_type_size_and_hash() -> None:
    accepted = accept_proof(PNG, "scan.png", max_bytes=1024)
    assert (accepted.media_type, accepted.size, accepted.filename) == (
        "image/png",
        len(PNG),
        "scan.png",
    )
    assert len(accepted.sha256) == 64


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "proof_document_empty"),
        (PDF + b"0" * 1024, "proof_document_too_large"),
        (b"just text", "proof_document_type"),
    ],
)
def test_empty_large_and_other_files_are_refused(content: bytes, code: str) -> None:
    with pytest.raises(RemovalRejected) as refused:
        accept_proof(content, "closing.pdf", max_bytes=1024)
    assert refused.value.code == code


def test_a_file_of_exactly_the_limit_is_accepted() -> None:
    assert accept_proof(PDF + b"0" * (1024 - len(PDF)), None, max_bytes=1024).size == 1024


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("closing.pdf", "closing.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\dana\\scan 1.jpg", "scan 1.jpg"),
        ('bad"name;\r\n.pdf', "badname.pdf"),
        (None, "proof.pdf"),
        ("...", "proof.pdf"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_the_file_name_keeps_no_folder_quote_or_control_character(
    given: str | None, expected: str
) -> None:
    assert safe_filename(given, "application/pdf") == expected


def test_a_jpeg_without_a_name_is_called_proof_jpg() -> None:
    assert safe_filename("", "image/jpeg") == "proof.jpg"


def test_a_request_may_cite_only_a_document_of_its_own_lead_and_agent() -> None:
    check_attachable(DOCUMENT, lead_id="L-1", agent_id="A-1")
    for document, lead_id, agent_id in (
        (None, "L-1", "A-1"),
        (DOCUMENT, "L-2", "A-1"),
        (DOCUMENT, "L-1", "A-2"),
    ):
        with pytest.raises(RemovalRejected) as refused:
            check_attachable(document, lead_id=lead_id, agent_id=agent_id)
        assert refused.value.code == "unknown_proof_document"


def test_coordinators_and_the_uploading_agent_may_read_a_document_no_one_else() -> None:
    assert may_read(DOCUMENT, subject="C-9", is_coordinator=True)
    assert may_read(DOCUMENT, subject="A-1", is_coordinator=False)
    assert not may_read(DOCUMENT, subject="A-2", is_coordinator=False)
