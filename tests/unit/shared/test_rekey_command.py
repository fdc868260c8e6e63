"""`python -m services.<name> rekey` runs the re-encryption job on the service's sealed columns
and its mail outbox (docs/design.md 3.5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.invitations.rekey import SEALED
from shared import runtime
from shared.rekey import MAIL_OUTBOX, SealedColumn
from shared.settings import ServiceSettings


def test_rekey_runs_the_job_on_the_service_s_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []

    async def job(
        settings: ServiceSettings, migrations: Path | None, sealed: tuple[SealedColumn, ...]
    ) -> dict[str, int]:
        seen.append(sealed)
        return {"invitations.contact_sealed": 2, "mail_outbox.sealed": 1}

    monkeypatch.setattr(runtime, "rekey_service", job)

    def no_app() -> Any:
        raise AssertionError("rekey must not serve")

    runtime.serve(["rekey"], ServiceSettings(), no_app, None, SEALED)
    assert seen == [SEALED]
    assert "3 rows sealed again" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"\[migrate\|rekey\]"):
        runtime.serve(["rekeyy"], ServiceSettings(), no_app, None)


def test_the_job_selects_only_values_not_under_the_current_key() -> None:
    select = MAIL_OUTBOX.select()
    assert "substring(sealed FROM 1 FOR 5) <> $1" in select
    assert "sealed IS NOT NULL" in select and "SKIP LOCKED" in select
    assert {column.table for column in SEALED} == {"representations", "leads", "invitations"}
