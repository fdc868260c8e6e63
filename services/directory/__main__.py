"""`python -m services.directory`: run the public directory until stopped; with `migrate`,
apply its migrations and exit."""

from __future__ import annotations

import sys

from services.directory.app import MIGRATIONS, create_app
from services.directory.settings import DirectorySettings
from shared.runtime import serve


def main() -> None:
    settings = DirectorySettings()
    serve(sys.argv[1:], settings, lambda: create_app(settings), MIGRATIONS)


if __name__ == "__main__":
    main()
