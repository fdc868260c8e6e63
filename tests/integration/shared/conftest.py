"""A minimal service built from the shared plumbing, to test that plumbing on the real stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration

PROBE_MIGRATIONS = Path(__file__).parent / "probe_migrations"


class ProbeSettings(ServiceSettings):
    service_name: str = "probe"
