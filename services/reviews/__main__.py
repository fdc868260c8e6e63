"""`python -m services.reviews`: run the reviews service until stopped."""

from __future__ import annotations

from services.reviews.app import create_app
from services.reviews.settings import ReviewsSettings
from shared.runtime import run_http_app


def main() -> None:
    settings = ReviewsSettings()
    run_http_app(create_app(settings), settings)


if __name__ == "__main__":
    main()
