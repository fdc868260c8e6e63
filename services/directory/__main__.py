"""`python -m services.directory`: run the public directory until stopped."""

from __future__ import annotations

from services.directory.app import create_app
from services.directory.settings import DirectorySettings
from shared.runtime import run_http_app


def main() -> None:
    settings = DirectorySettings()
    run_http_app(create_app(settings), settings)


if __name__ == "__main__":
    main()
