"""`python -m services.scoring`: run the scoring service until stopped."""

from __future__ import annotations

from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings
from shared.runtime import run_http_app


def main() -> None:
    settings = ScoringSettings()
    run_http_app(create_app(settings), settings)


if __name__ == "__main__":
    main()
