"""`python -m services.removals`: run the removals service until stopped; with `migrate`, apply its
migrations and exit."""

from __future__ import annotations

import sys

from services.removals.app import MIGRATIONS, create_app
from services.removals.rekey import SEALED
from services.removals.settings import RemovalsSettings
from shared.runtime import serve


def main() -> None:
    settings = RemovalsSettings()
    serve(sys.argv[1:], settings, lambda: create_app(settings), MIGRATIONS, SEALED)


if __name__ == "__main__":
    main()
