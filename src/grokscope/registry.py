"""Name -> implementation registries, so the CLI, configs and sweeps find parts by name.

A task, model or probe module declares its pydantic spec beside its code and registers both
under the spec's ``name``; ``config.py`` composes whatever is registered. Adding a part never
means editing a central list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of (spec class, builder) pairs for one kind of part."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, type] = {}
        self._builders: dict[str, T] = {}

    def register(self, spec: type) -> Callable[[T], T]:
        """Class or function decorator: ``@TASKS.register(ModularArithmeticSpec)``."""
        name = spec.model_fields["name"].default
        if not isinstance(name, str):
            raise TypeError(f"{spec.__name__}.name needs a string default to be registered")

        def decorate(builder: T) -> T:
            if name in self._specs and self._specs[name] is not spec:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._specs[name] = spec
            self._builders[name] = builder
            return builder

        return decorate

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> type:
        if name not in self._specs:
            raise KeyError(name)
        return self._specs[name]

    def builder(self, name: str) -> T:
        return self._builders[name]

    def __contains__(self, name: Any) -> bool:
        return name in self._specs
