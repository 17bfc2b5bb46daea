"""Module-level ``__getattr__``/``__dir__`` for packages whose public names load on first use (PEP 562), so that
importing one name never imports the heavy dependencies of the others."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from importlib.util import find_spec
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict[str, Any], sources: Mapping[str, str],
                 public: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name of ``sources`` (public name -> defining submodule) is
    imported from its submodule and cached in ``namespace`` (the package's globals); a submodule name returns the
    submodule, as eager imports made it."""

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            if not name.startswith("_") and find_spec(f"{package}.{name}") is not None:
                return import_module(f".{name}", package)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{source}", package), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
