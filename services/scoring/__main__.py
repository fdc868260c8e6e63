"""`python -m services.scoring`: run the scoring service until stopped; with `migrate`, apply its
migrations and exit."""

from __future__ import annotations

import sys

from services.scoring.app import MIGRATIONS, create_app
from services.scoring.settings import ScoringSettings
from shared.runtime import serve


def main() -> None:
    settings = ScoringSettings()
    serve(sys.argv[1:], settings, lambda: create_app(settings), MIGRATIONS)


if __name__ == "__main__":
    main()
