"""`python -m services.portal`: serve the agents' and staff's pages until stopped. It has no
database, so no `migrate` or `rekey`."""

from __future__ import annotations

import sys

from services.portal.app import create_app
from services.portal.settings import PortalSettings
from shared.runtime import run_http_app


def main() -> None:
    if sys.argv[1:]:
        raise SystemExit("usage: python -m services.portal (no database: nothing to migrate)")
    settings = PortalSettings()
    run_http_app(create_app(settings), settings)


if __name__ == "__main__":
    main()
