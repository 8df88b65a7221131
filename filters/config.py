"""One loader for every YAML config: typed dataclasses, unknown keys fail with file and key named.

Pipeline, filter, mixture and model configs are all plain (nested) dataclasses; this module turns
a YAML file into one of them. It lives in ``filters`` because that is the package every other
one may import without pulling in Beam or torch.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key.

    ``key`` is the dotted key at fault when one is known, so that a ``--set`` flag can be blamed.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def read_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """The YAML mapping in ``path``; every failure is a ConfigError naming the file and ``what`` it is."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_syntax_error(path, what, exc)) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _yaml_syntax_error(path: Path, what: str, exc: yaml.MarkedYAMLError) -> str:
    """``FILE:LINE:COLUMN: YAML syntax error ...`` on one line; PyYAML's own message takes eight."""
    def at(mark: yaml.Mark) -> str:
        return f"{mark.line + 1}:{mark.column + 1}"

    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{at(mark)}" if mark else str(path)
    context = f" ({exc.context} at {at(exc.context_mark)})" if exc.context and exc.context_mark else ""
    return f"{where}: YAML syntax error in {what}: {exc.problem or exc.context}{context}"


def load_yaml(cls: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    """Read ``path`` into dataclass ``cls``; ``overrides`` are dotted keys applied on top.

    Overrides are what ``--set KEY=VALUE`` gives, so a bad value in an overridden key (or a key
    an override invents) is reported against that flag, not against the file.
    """
    overrides = overrides or {}
    data = read_mapping(path)
    for dotted, value in overrides.items():
        set_dotted(data, dotted, value)
    try:
        return from_dict(cls, data, where=str(path))
    except ConfigError as exc:
        flag = next((dotted for dotted in overrides if _overridden(exc.key, dotted)), None)
        if flag is None:
            raise
        # The flag names the key already: drop the file and _convert's "KEY: " label.
        detail = re.sub(r"^(<top>|[\w.\[\]]+): ", "", str(exc).removeprefix(f"{path}: "))
        detail = detail.removeprefix(f"{flag}: ")
        raise ConfigError(f"--set {flag}={_flow_yaml(overrides[flag])}: {detail}", exc.key) from None


def _overridden(key: str | None, dotted: str) -> bool:
    """Whether the error at ``key`` lies in what the override of ``dotted`` set, or in a key it invented."""
    if key is None:
        return False
    return key == dotted or key.startswith((f"{dotted}.", f"{dotted}[")) or dotted.startswith(f"{key}.")


def _flow_yaml(value: Any) -> str:
    """A --set value as it was typed: one line of YAML."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n").removesuffix("\n...")


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating the intermediate mappings."""
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def from_dict(cls: type[T], data: Any, where: str = "<config>") -> T:
    """Build ``cls`` from a mapping, recursing into dataclass-typed fields.

    Types are checked loosely (ints are accepted for floats, lists for tuples); a wrong type or an
    unknown key raises :class:`ConfigError` naming ``where`` and the dotted key.
    """
    return _convert(cls, data, where, "")


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    label = f"{where}: {key or '<top>'}"
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: expected a mapping, got {value!r}", key)
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key '{_join(key, unknown[0])}' (known here: {known})",
                              _join(key, unknown[0]))
        kwargs = {name: _convert(hints[name], v, where, _join(key, name)) for name, v in value.items()}
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{label}: {exc}", _named_field(key, fields, str(exc))) from None
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{label}: bad value {value!r}", key)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{label}: {value!r} is not one of {typing.get_args(tp)}", key)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label}: expected a list, got {value!r}", key)
        args = typing.get_args(tp)
        item = args[0] if args else Any
        items = [_convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: expected a mapping, got {value!r}", key)
        _, vt = typing.get_args(tp) or (Any, Any)
        return {str(k): _convert(vt, v, where, _join(key, str(k))) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label}: expected a number, got {value!r}", key)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label}: expected an integer, got {value!r}", key)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label}: expected true or false, got {value!r}", key)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label}: expected a string, got {value!r}", key)
        return value
    return value


def _named_field(key: str, fields: typing.Iterable[str], message: str) -> str | None:
    """The dotted key of the field a validation message names first (``stages: unknown stage``)."""
    named = [(m.start(), name) for name in fields if (m := re.search(rf"\b{re.escape(name)}\b", message))]
    return _join(key, min(named)[1]) if named else None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
