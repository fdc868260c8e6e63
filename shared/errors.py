"""The one error type the services' domains and handlers raise for a refused command. Each
service's API maps codes to HTTP statuses (`shared.http.domain_problems`)."""

from __future__ import annotations


class DomainError(Exception):
    """A command the rules refuse; `code` names the rule, `message` says it to the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFoundError(DomainError):
    """The command's subject (an agent, a lead, a review, a task) is not there, or not for
    this caller to see."""

    def __init__(self, message: str) -> None:
        super().__init__("not_found", message)
