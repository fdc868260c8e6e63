"""`python -m services.invitations`: run the invitations service until stopped; with `migrate`, apply its
migrations and exit."""

from __future__ import annotations

import sys

from services.invitations.app import MIGRATIONS, create_app
from services.invitations.rekey import SEALED
from services.invitations.settings import InvitationsSettings
from shared.runtime import serve


def main() -> None:
    settings = InvitationsSettings()
    serve(sys.argv[1:], settings, lambda: create_app(settings), MIGRATIONS, SEALED)


if __name__ == "__main__":
    main()
