"""`python -m services.invitations`: run the invitations service until stopped."""

from __future__ import annotations

from services.invitations.app import create_app
from services.invitations.settings import InvitationsSettings
from shared.runtime import run_http_app


def main() -> None:
    settings = InvitationsSettings()
    run_http_app(create_app(settings), settings)


if __name__ == "__main__":
    main()
