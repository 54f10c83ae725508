"""Typed model configurations, checked when they are made.

Every model declares one frozen dataclass of its options, derived from :class:`ModelConfig`;
each field's type annotation and :func:`option` metadata (bounds, allowed values, length) are
the whole specification::

    @dataclass(frozen=True)
    class MyConfig(ModelConfig):
        model_name: ClassVar[str] = "mine"
        hidden: int = option(64, min=1)
        lr: float = option(1e-3, min=0, min_exclusive=True)
        activation: Literal["relu", "silu"] = "silu"
        channels: tuple[int, ...] = option((8, 16), min=1, min_length=1)

``MyConfig.from_dict({"hidden": "abc"})`` raises :class:`~caloforge.errors.ConfigError` with
one sentence (``option 'hidden' of model 'mine' must be an integer, got 'abc'``), as do unknown
keys, ``null`` where None is not allowed, bools given for numbers (JSON ``true`` is not 1), NaN
and infinities, values out of range and lists of the wrong length. Integers are accepted for
float options and stored as floats; lists become tuples. :meth:`ModelConfig.to_dict` gives the
plain-JSON form that ``model.json`` stores, and ``from_dict(to_dict())`` round-trips.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar, Union

from caloforge.errors import ConfigError

C = TypeVar("C", bound="ModelConfig")


def option(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    odd: bool = False,
    length: int | None = None,
    min_length: int | None = None,
) -> Any:
    """A dataclass field with checks: numeric bounds (applied to every element of a tuple),
    ``odd`` integers, and the ``length`` (or ``min_length``) of a tuple option."""
    meta = {
        "min": min,
        "max": max,
        "min_exclusive": min_exclusive,
        "max_exclusive": max_exclusive,
        "odd": odd,
        "length": length,
        "min_length": min_length,
    }
    return dataclasses.field(default=default, metadata=meta)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)) and len(args) == 1:
            return True, args[0]
    return False, tp


def _describe(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
    if tp is str:
        return "a string"
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        plural = {int: "integers", float: "finite numbers", bool: "booleans", str: "strings"}
        return f"a list of {plural.get(typing.get_args(tp)[0], 'values')}"
    return str(tp)


class _Invalid(Exception):
    pass


def _convert(value: Any, tp: Any) -> Any:
    """``value`` converted to ``tp`` (int, float, bool, str, Literal, tuple[X, ...]), or raise."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise _Invalid
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                return float(value)
        raise _Invalid
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Invalid
    if typing.get_origin(tp) is Literal:
        if isinstance(value, str | int) and not isinstance(value, bool):
            if value in typing.get_args(tp):
                return value
        raise _Invalid
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        if isinstance(value, list | tuple):
            return tuple(_convert(v, item) for v in value)
        raise _Invalid
    raise TypeError(f"unsupported option type {tp!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of every model's options; subclasses add fields (see the module docstring)."""

    #: the model the options belong to (named in error messages)
    model_name: ClassVar[str] = "model"
    #: what a stored config (a checkpoint's ``model.json``) that lacks an option meant: the
    #: behaviour before the option existed, for options whose default has changed since
    #: (:meth:`from_stored`); configs are stored whole, so only older checkpoints lack keys
    absent_means: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, self._check(f, hints[f.name], getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Checks across options; override and raise :class:`ConfigError` (one sentence)."""

    def _fail(self, name: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(
            f"option {name!r} of model {self.model_name!r} must be {expected}, got {value!r}"
        )

    def _check(self, f: dataclasses.Field, tp: Any, value: Any) -> Any:
        optional, inner = _is_optional(tp)
        if value is None:
            if optional:
                return None
            raise self._fail(f.name, _describe(inner), value)
        try:
            out = _convert(value, inner)
        except _Invalid:
            expected = _describe(inner) + (" or null" if optional else "")
            raise self._fail(f.name, expected, value) from None
        m = f.metadata
        items = out if isinstance(out, tuple) else (out,)
        if isinstance(out, tuple):
            if m.get("length") is not None and len(out) != m["length"]:
                raise self._fail(f.name, f"a list of {m['length']} values", list(out))
            if m.get("min_length") is not None and len(out) < m["min_length"]:
                n = m["min_length"]
                expected = "a non-empty list" if n == 1 else f"a list of at least {n} values"
                raise self._fail(f.name, expected, list(out))
        for v in items:
            if not isinstance(v, int | float) or isinstance(v, bool):
                continue
            lo, hi = m.get("min"), m.get("max")
            what = "a list of values " if isinstance(out, tuple) else ""
            shown = list(out) if isinstance(out, tuple) else value
            if lo is not None and (v <= lo if m.get("min_exclusive") else v < lo):
                sign = ">" if m.get("min_exclusive") else ">="
                raise self._fail(f.name, f"{what}{sign} {lo:g}", shown)
            if hi is not None and (v >= hi if m.get("max_exclusive") else v > hi):
                sign = "<" if m.get("max_exclusive") else "<="
                raise self._fail(f.name, f"{what}{sign} {hi:g}", shown)
            if m.get("odd") and int(v) % 2 == 0:
                raise self._fail(f.name, "an odd integer", shown)
        return out

    # ----------------------------------------------------------------- conversions
    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any] | None = None) -> C:
        """The config from plain JSON values (missing keys take their defaults)."""
        values = dict(values or {})
        if not all(isinstance(k, str) for k in values):
            raise ConfigError(f"the options of model {cls.model_name!r} must be named by strings")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for model {cls.model_name!r}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    @classmethod
    def from_stored(cls: type[C], values: Mapping[str, Any]) -> C:
        """The config a checkpoint was trained with: a missing key takes its
        :attr:`absent_means` value where it has one, else its default."""
        return cls.from_dict({**cls.absent_means, **values})

    @classmethod
    def coerce(cls: type[C], config: ModelConfig | Mapping[str, Any] | None) -> C:
        """``config`` as this class: an instance is kept, a mapping goes through from_dict."""
        if isinstance(config, cls):
            return config
        if isinstance(config, ModelConfig):
            raise ConfigError(
                f"model {cls.model_name!r} takes {cls.__name__}, got {type(config).__name__}"
            )
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(
                f"the config of model {cls.model_name!r} must be a JSON object of option: value"
            )
        return cls.from_dict(config)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists), in field order."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied (and checked)."""
        return self.from_dict({**self.to_dict(), **changes})
