"""Settings dataclasses on the command line and in YAML recipes: an argparse parser generated from the fields (type,
default and help of each, never written twice), values read as YAML scalars and checked against the annotations.

Used by every ``xlmr-hf`` command; torch-free (only ``yaml``). ``docs/settings.md`` says why this is not
`transformers.HfArgumentParser`.
"""

from __future__ import annotations

import argparse
import ast
import collections.abc
import dataclasses
import difflib
import enum
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

__all__ = ["RecipeError", "SettingsParser", "build_settings", "coerce", "field_help", "parse_overrides",
           "type_label", "unknown_field"]


class RecipeError(ValueError):
    """A recipe, command-line value or setting is invalid; the message names the field, the value and what is
    allowed."""


_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.MutableSequence)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def _arms(hint: Any) -> tuple[Any, ...]:
    """The members of a union (``X | Y``, ``Optional[X]``), or ``(hint,)``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _is_sequence(hint: Any) -> bool:
    return (typing.get_origin(hint) or hint) in _SEQUENCES


def type_label(hint: Any) -> str:
    """A short, readable name of a type annotation: ``int``, ``list[str]``, ``str | None``, ``{a,b,c}``."""
    if hint is type(None):
        return "None"
    if hint is Any:
        return "any"
    arms = _arms(hint)
    if len(arms) > 1:
        return "|".join(dict.fromkeys(type_label(arm) for arm in arms))
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "{" + ",".join(str(v) for v in typing.get_args(hint)) + "}"
    if origin in _SEQUENCES:
        (item, *_) = typing.get_args(hint) or (Any,)
        return f"list[{type_label(item)}]"
    if origin in _MAPPINGS or hint in _MAPPINGS:
        return "dict"
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        values = [str(member.value) for member in hint]
        return "{" + ",".join(values) + "}" if len(values) <= 8 else hint.__name__
    if hint in _SEQUENCES:
        return "list"
    return getattr(hint, "__name__", str(hint))


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Docstrings written under the fields of ``cls`` and its bases (the attribute-docstring convention)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                found[node.target.id] = inspect.cleandoc(after.value.value)
    return found


def field_help(cls: type) -> dict[str, str]:
    """Help text of every field: ``metadata["help"]`` (transformers' convention) or the attribute docstring."""
    docstrings = _attribute_docstrings(cls)
    return {f.name: " ".join(str(f.metadata.get("help") or docstrings.get(f.name, "")).split())
            for f in dataclasses.fields(cls)}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _convert(hint: Any, value: Any) -> tuple[bool, Any]:
    """(accepted, converted value) of ``value`` for one annotation."""
    if hint is Any or hint is typing.Any:
        return True, value
    arms = _arms(hint)
    if len(arms) > 1:
        if value is None:
            return type(None) in arms, None
        for arm in sorted(arms, key=lambda a: a is str):  # str last: "3" stays a number where a number is allowed
            ok, converted = _convert(arm, value)
            if ok:
                return True, converted
        return False, value
    origin = typing.get_origin(hint) or hint
    if hint is type(None) or hint is None:
        return value is None, value
    if origin is typing.Literal:
        return value in typing.get_args(hint), value
    if origin is bool:
        return isinstance(value, bool), value
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if origin is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return isinstance(value, (int, float)) and not isinstance(value, bool), float(value) if isinstance(
            value, (int, float)) else value
    if origin is str:
        return isinstance(value, str), value
    if inspect.isclass(origin) and issubclass(origin, enum.Enum):
        return isinstance(value, origin) or value in {m.value for m in origin}, value
    if origin in _SEQUENCES:
        return _convert_sequence(hint, origin, value)
    if origin in _MAPPINGS:
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
    if inspect.isclass(origin):
        return isinstance(value, origin), value
    return True, value


def _convert_sequence(hint: Any, origin: Any, value: Any) -> tuple[bool, Any]:
    (item, *_) = typing.get_args(hint) or (Any,)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]  # "--languages en,fr"
    elif not isinstance(value, (list, tuple)):
        value = [value]  # a scalar where a list is expected: a list of one
    out = []
    for element in value:
        ok, converted = _convert(item, element)
        if not ok:
            return False, value
        out.append(converted)
    return True, tuple(out) if origin is tuple else out


def coerce(cls: type, name: str, value: Any) -> Any:
    """``value`` checked against field ``name`` of ``cls`` and converted where lossless; `RecipeError` otherwise."""
    hint = typing.get_type_hints(cls)[name]
    ok, converted = _convert(hint, value)
    if ok:
        return converted
    arms = _arms(hint)
    if value is None:
        raise RecipeError(f"{name} may not be null")
    if str in arms and isinstance(value, (bool, int, float)):  # YAML reads `bf16: true` / `run_name: 7` as such
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    raise RecipeError(f"{name} must be {type_label(hint)}, got {value!r}")


def unknown_field(name: str, known: Iterable[str], what: str = "field") -> RecipeError:
    """The error for a name that is not among ``known``, with a did-you-mean and the allowed names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    return RecipeError(f"unknown {what} {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                       + f"; fields: {', '.join(known)}")


def build_settings(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls(**values)`` after checking every name (unknown ones get a did-you-mean) and every value's type."""
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    for name in values:
        if name not in known:
            raise unknown_field(name, known)
    return cls(**{name: coerce(cls, name, value) for name, value in values.items()})


def _parse_scalar(hint: Any, name: str, raw: str) -> Any:
    """A command-line value: YAML (``null``, ``[en, fr]``, ``{a: 1}``, ``3e-4``), or the raw string where the
    field takes a string and YAML would read something else (``--mixed_precision no`` is ``"no"``, not False)."""
    if raw == "":
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        if str in _arms(hint):
            return raw
        raise RecipeError(f"--{name} {raw!r} is not a valid value: {str(error).splitlines()[0]}") from None
    if not _convert(hint, value)[0] and _convert(hint, raw)[0]:
        return raw
    return value


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help text without breaking words at hyphens (``xlm-roberta``, ``recipes/finetune``)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class SettingsParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors raise `RecipeError` (one line, caught by the CLI) instead of exiting,
    and which knows the settings dataclasses it was built from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --max_step must not silently mean --max_steps
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.settings_fields: dict[str, Any] = {}  # dest -> type annotation

    def error(self, message: str) -> typing.NoReturn:
        raise RecipeError(message)

    def add_settings(self, cls: type, *, dashes: bool = False, title: str | None = None,
                     aliases: Mapping[str, Sequence[str]] | None = None, skip: Iterable[str] = ()) -> None:
        """One option per init field of ``cls``: ``--name`` (and ``--name-with-dashes``), metavar = the type, help =
        the field's help and default. Bools take true/false/True/False or stand alone; list fields take one YAML
        list or several values; a field without default is required. Fields of base classes that are dataclasses go
        into a group of their own (e.g. the `TrainingArguments` fields of fine-tuning)."""
        hints, helps, aliases, skip = typing.get_type_hints(cls), field_help(cls), aliases or {}, set(skip)
        groups: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init or f.name in skip or f.name in self.settings_fields:
                continue
            owner = next((k for k in cls.__mro__ if f.name in inspect.get_annotations(k)), cls)
            name = title or cls.__name__ if owner is cls else owner.__name__
            group = groups.get(name) or groups.setdefault(name, self.add_argument_group(f"{name} fields"))
            self._add_field(group, f, hints[f.name], helps.get(f.name, ""), dashes, aliases.get(f.name, ()))

    def _add_field(self, group: Any, f: dataclasses.Field, hint: Any, text: str, dashes: bool,
                   aliases: Sequence[str]) -> None:
        names = [f"--{f.name.replace('_', '-')}", f"--{f.name}"] if dashes else [f"--{f.name}"]
        if "_" in f.name and not dashes:
            names.append(f"--{f.name.replace('_', '-')}")
        default = _default(f)
        required = default is dataclasses.MISSING
        if required or "default:" not in text.lower():  # else the help says what the default means
            text += " (required)" if required else f" (default: {_show(default)})"
        text = text.strip().replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "metavar": type_label(hint), "help": text,
                                  "default": argparse.SUPPRESS, "required": required}
        is_bool = bool in _arms(hint)
        if is_bool:
            kwargs.update(nargs="?", const="true")
        elif any(_is_sequence(arm) for arm in _arms(hint)):
            kwargs.update(nargs="*")
        group.add_argument(*dict.fromkeys([*names, *aliases]), **kwargs)
        if is_bool and default is True:
            negative = [f"--no-{f.name.replace('_', '-')}", f"--no_{f.name}"]
            group.add_argument(*dict.fromkeys(negative), dest=f.name, action="store_const", const="false",
                               default=argparse.SUPPRESS, help=f"same as --{f.name} false")
        self.settings_fields[f.name] = hint

    def reject_unknown(self, rest: Sequence[str]) -> None:
        """Raise for what `parse_known_args` left over: an unknown ``--field`` gets a did-you-mean."""
        for item in rest:
            if item.startswith("--"):
                raise unknown_field(item[2:].split("=", 1)[0].replace("-", "_"), self.settings_fields)
        if rest:
            raise RecipeError(f"overrides must be --field value pairs, got {rest[0]!r}")

    def settings_values(self, namespace: argparse.Namespace) -> dict[str, Any]:
        """The settings given on the command line, typed (fields not given are absent)."""
        out = {}
        for name, hint in self.settings_fields.items():
            if not hasattr(namespace, name):
                continue
            raw = getattr(namespace, name)
            if isinstance(raw, list):
                out[name] = (_parse_scalar(hint, name, raw[0]) if len(raw) == 1 else
                             [_parse_scalar(_item_hint(hint), name, r) for r in raw])
            else:
                out[name] = _parse_scalar(hint, name, raw)
        return out


def _item_hint(hint: Any) -> Any:
    for arm in _arms(hint):
        if _is_sequence(arm):
            return (typing.get_args(arm) or (Any,))[0]
    return Any


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return repr(list(value))
    return "null" if value is None else repr(value) if isinstance(value, str) and not value else str(value)


def parse_overrides(cls: type, items: Sequence[str]) -> dict[str, Any]:
    """``["--field", "value", "--flag", ...]`` as typed values of the fields of ``cls`` (only those given)."""
    parser = SettingsParser(prog=cls.__name__, add_help=False)
    parser.add_settings(cls)
    items = list(items)
    for item in items[:1]:
        if not item.startswith("--"):
            raise RecipeError(f"overrides must be --field value pairs, got {item!r}")
    try:
        namespace, rest = parser.parse_known_args(items)
    except RecipeError as error:
        flag = next((i for i in items if i.startswith("--") and f"argument {i.split('=')[0]}" in str(error)), None)
        if flag is not None and "expected" in str(error):
            raise RecipeError(f"override {flag} has no value") from None
        raise
    parser.reject_unknown(rest)
    return parser.settings_values(namespace)
