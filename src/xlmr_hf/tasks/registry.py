"""The registry of fine-tuning tasks: `register_task` (a class decorator), `get_task` and `task_names`. Every module
of the `xlmr_hf.tasks` package is imported once on first use, so a task registers itself by being a module there."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from .base import TaskDataError

if TYPE_CHECKING:
    from .base import Task

__all__ = ["get_task", "register_task", "task_names"]

_TASKS: dict[str, type[Task]] = {}
_INFRASTRUCTURE = {"base", "registry", "scoring", "metrics"}
_discovered = False


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` (a `Task` subclass with a unique ``name``) available to ``xlmr-hf finetune``."""
    if not cls.name or cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} of {cls.__qualname__} is empty or taken by "
                         f"{_TASKS[cls.name].__qualname__ if cls.name in _TASKS else None}")
    _TASKS[cls.name] = cls
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    from . import __name__ as package
    from . import __path__ as path

    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_") and module.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{package}.{module.name}")
    _discovered = True


def task_names() -> list[str]:
    """The registered tasks, in name order."""
    _discover()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """A new instance of the task called ``name``."""
    _discover()
    if name not in _TASKS:
        raise TaskDataError(f"task={name!r}; allowed: {sorted(_TASKS)}")
    return _TASKS[name]()
