"""`python -m services.removals`: run the removals service until stopped."""

from __future__ import annotations

from services.removals.app import create_app
from services.removals.settings import RemovalsSettings
from shared.runtime import run_http_app


def main() -> None:
    settings = RemovalsSettings()
    run_http_app(create_app(settings), settings)


if __name__ == "__main__":
    main()
