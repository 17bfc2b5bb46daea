"""Registers the XLM-R classes with transformers' Auto classes when transformers' Auto classes are first imported, so
that ``import xlmr_hf`` costs nothing (no torch, no transformers) for users of `xlmr_hf.corpus`, `data` or
`tokenization`, while ``import xlmr_hf`` followed by ``AutoModel.from_pretrained`` keeps working. Why an import hook:
transformers has no lazy registry for classes outside its package, and its Auto classes already import torch, so
registering at that moment adds only our model module to what the user pays for anyway."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from importlib import import_module
from typing import Any

__all__ = ["install", "registered"]

_TRIGGER = "transformers.models.auto.configuration_auto"  # defines AutoConfig; torch is loaded by then


def registered() -> bool:
    """Whether `xlmr_hf.models` (whose import registers the classes) is loaded."""
    return "xlmr_hf.models" in sys.modules


def _initializing() -> bool:
    """Whether some transformers module is still being imported: our model module imports several of them, so
    registering now could meet a half-initialised module."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items()) if name.split(".")[0] == "transformers")


def _register() -> None:
    _Hook.remove()
    import_module("xlmr_hf.models")


class _Loader(importlib.abc.Loader):
    """Runs transformers' own loader for one of its modules, then registers if the Auto classes are loaded and no
    transformers module is still mid-import (so the outermost transformers import registers as it finishes)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # get_code, is_package, get_resource_reader, ... of the real loader
        return getattr(self.loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self.loader.exec_module(module)
        finally:
            module.__spec__.loader = module.__loader__ = self.loader
        if module.__name__ == _TRIGGER:
            _Hook.armed = True
        if _Hook.armed and not registered() and not _initializing_except(module.__name__):
            _register()


def _initializing_except(name: str) -> bool:
    spec = sys.modules[name].__spec__
    flag, spec._initializing = getattr(spec, "_initializing", False), False  # this module has finished executing
    try:
        return _initializing()
    finally:
        spec._initializing = flag


class _Hook(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder that finds nothing itself: it wraps the loaders of transformers' modules (`_Loader`)
    until the XLM-R classes are registered, then removes itself."""

    armed = False

    @classmethod
    def remove(cls) -> None:
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, cls)]

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] != "transformers":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Register now if transformers' Auto classes are loaded already, else when they are first imported."""
    if registered():
        return
    if _TRIGGER in sys.modules and not _initializing():
        _register()
    elif not any(isinstance(finder, _Hook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
