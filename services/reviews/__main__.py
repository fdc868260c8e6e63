"""`python -m services.reviews`: run the reviews service until stopped; with `migrate`, apply its
migrations and exit."""

from __future__ import annotations

import sys

from services.reviews.app import MIGRATIONS, create_app
from services.reviews.settings import ReviewsSettings
from shared.runtime import serve


def main() -> None:
    settings = ReviewsSettings()
    serve(sys.argv[1:], settings, lambda: create_app(settings), MIGRATIONS)


if __name__ == "__main__":
    main()
