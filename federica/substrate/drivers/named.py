"""Factories by name: the one registry implementation behind device and compute drivers.

A registry is an object the application context owns (no module-level table): two
contexts in one process, such as a test's and a second federated controller's, never see
each other's registrations, and registering a driver never hides the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class UnknownDriver(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[F]):
    def __init__(self, kind: str, builtin: dict[str, F] | None = None) -> None:
        self.kind = kind  # "driver", "compute driver": used in messages
        self._factories: dict[str, F] = dict(builtin or {})

    def register(self, name: str, factory: F) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, name: str, subject: str) -> F:
        """The factory called `name`; `subject` ("device prg-mx") names who asked."""
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownDriver(
                f"{subject}: no {self.kind} named {name!r} in this controller "
                f"(known: {', '.join(self.names())})"
            ) from None
