"""A value the composition root sets once and module-level handlers read.

Handlers are registered at import time (`@dispatcher.on`), before any settings exist; what they
need beyond the unit of work (templates, policies, URLs) is configured by `create_app()`.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Configured(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._value: T | None = None

    def set(self, value: T) -> None:
        self._value = value

    def get(self) -> T:
        if self._value is None:
            raise RuntimeError(f"{self.what} not configured: build the app with create_app()")
        return self._value
