"""Declared hyper-parameters: each method lists its hyper-parameters once, as :class:`HParam`
entries (name, type, allowed range or choices, published default, per-benchmark values, and the
paper equation or official ``file:line`` each value comes from).

Everything else reads that one declaration:

* :func:`check_hparams` (run by :func:`cmhash.methods.registry.resolve_hparams`, so by
  ``cmhash validate-config``, by the workflow's start-up check ``check_config`` and by the
  training job, and again by :class:`~cmhash.methods.base.HashingMethod` when it is built)
  rejects a value of the wrong type, outside its range or not among its choices, naming the
  config key and what is allowed (``methods.nrch.lambda: 1.5 is above its maximum 1; allowed:
  a number in [0, 1]``);
* a method's ``defaults`` and ``per_dataset`` dictionaries are derived from it
  (:func:`defaults_of`, :func:`per_dataset_of`);
* ``cmhash hparams --markdown`` renders the per-method tables of README.md
  (:func:`markdown_table`), and ``cmhash validate-config --show`` prints each value's
  provenance with its citation (:func:`citation`).

The constructors :func:`Int`, :func:`Float`, :func:`Bool`, :func:`Choice`, :func:`Ints` and
:func:`Floats` build the entries. ``nullable=True`` admits ``null`` (what it means is in ``doc``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cmhash.errors import ConfigError
from cmhash.families import FAMILIES

#: The kinds a hyper-parameter can have; ``any`` is an undeclared one (no check).
KINDS = ("int", "float", "bool", "choice", "ints", "floats", "any")


@dataclass(frozen=True)
class HParam:
    """One declared hyper-parameter.

    name: the key under ``methods.<method>`` in the config.
    default: the published value common to every dataset (or, where a method publishes only
        per-dataset values, the one its official code defaults to).
    kind: ``int``, ``float`` (an int is accepted), ``bool``, ``choice`` (one of ``choices``),
        ``ints`` / ``floats`` (a list of those, each within the range), or ``any`` (unchecked).
    source: where ``default`` comes from (paper equation or official ``file:line``), or why it
        is not published.
    minimum, maximum: the allowed range (inclusive unless ``exclusive_minimum`` /
        ``exclusive_maximum``); for lists the range of every element.
    choices: the allowed values of a ``choice``.
    nullable: ``null`` is allowed too.
    length: a list's exact length.
    multiple_of: an int must be a multiple of this.
    per_family: published values by benchmark family (:data:`cmhash.families.FAMILIES`).
    family_source: where the ``per_family`` values come from.
    doc: what the hyper-parameter does, in a few words.
    """

    name: str
    default: Any
    kind: str
    source: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    length: int | None = None
    multiple_of: int | None = None
    per_family: Mapping[str, Any] = field(default_factory=dict)
    family_source: str = ""
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"hyper-parameter {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"hyper-parameter {self.name!r}: a choice needs choices")
        unknown = sorted(set(self.per_family) - set(FAMILIES))
        if unknown:
            raise ValueError(f"hyper-parameter {self.name!r}: per_family {unknown} are not benchmark families {FAMILIES}")
        object.__setattr__(self, "per_family", MappingProxyType(dict(self.per_family)))
        # The published values must satisfy the declaration itself.
        check_value(self, self.default, f"hyper-parameter {self.name!r} default")
        for family, value in self.per_family.items():
            check_value(self, value, f"hyper-parameter {self.name!r} ({family})")

    def allowed(self) -> str:
        """What is allowed, in words (the README table and every error message)."""
        return describe(self)


# -- constructors ------------------------------------------------------------------------------
def Int(name: str, default: Any, source: str = "", **kw: Any) -> HParam:
    return HParam(name, default, "int", source, **kw)


def Float(name: str, default: Any, source: str = "", **kw: Any) -> HParam:
    return HParam(name, default, "float", source, **kw)


def Bool(name: str, default: Any, source: str = "", **kw: Any) -> HParam:
    return HParam(name, default, "bool", source, **kw)


def Choice(name: str, default: Any, choices: Sequence[Any], source: str = "", **kw: Any) -> HParam:
    return HParam(name, default, "choice", source, choices=tuple(choices), **kw)


def Ints(name: str, default: Any, source: str = "", **kw: Any) -> HParam:
    return HParam(name, default, "ints", source, **kw)


def Floats(name: str, default: Any, source: str = "", **kw: Any) -> HParam:
    return HParam(name, default, "floats", source, **kw)


def undeclared(defaults: Mapping[str, Any]) -> tuple[HParam, ...]:
    """Entries of kind ``any`` for a class that gives only a ``defaults`` dictionary."""
    return tuple(HParam(key, value, "any", "undeclared (the class gives only a defaults value)")
                 for key, value in defaults.items())


# -- derived views -----------------------------------------------------------------------------
def defaults_of(params: Iterable[HParam]) -> dict[str, Any]:
    """``{name: default}`` in declaration order (a method's ``defaults``)."""
    return {p.name: p.default for p in params}


def per_dataset_of(params: Iterable[HParam], families: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """``{family: {name: value}}`` (a method's ``per_dataset``): every family of ``families``
    (those the method publishes a setting for, values or none) and of any ``per_family``."""
    params = list(params)
    order = list(dict.fromkeys([*families, *(f for p in params for f in p.per_family)]))
    unknown = sorted(set(order) - set(FAMILIES))
    if unknown:
        raise ValueError(f"published families {unknown} are not benchmark families {FAMILIES}")
    return {family: {p.name: p.per_family[family] for p in params if family in p.per_family} for family in order}


def citation(param: HParam, provenance: str) -> str:
    """The citation behind a resolved value of ``provenance`` (``published``,
    ``published:<family>``, ``borrowed:<family>`` or ``config``)."""
    if provenance == "config":
        return "the config"
    if provenance.startswith(("published:", "borrowed:")) and param.per_family:
        return param.family_source or param.source
    return param.source


# -- checks ------------------------------------------------------------------------------------
def _num(x: Any) -> str:
    """A number as a user would write it: 1.0 -> 1, 1e-05 stays 1e-05."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value)
    return repr(value)


def _range(p: HParam) -> str:
    lo, hi = p.minimum, p.maximum
    if lo is not None and hi is not None:
        return f"in {'(' if p.exclusive_minimum else '['}{_num(lo)}, {_num(hi)}{')' if p.exclusive_maximum else ']'}"
    if lo is not None:
        return f"{'>' if p.exclusive_minimum else '>='} {_num(lo)}"
    if hi is not None:
        return f"{'<' if p.exclusive_maximum else '<='} {_num(hi)}"
    return ""


def describe(p: HParam) -> str:
    """``a number in [0, 1]``, ``an integer >= 1``, ``one of 'code', 'paper'``, ..."""
    rng = _range(p)
    if p.kind == "int":
        text = "an integer" + (f" {rng}" if rng else "")
        if p.multiple_of:
            text += f", a multiple of {p.multiple_of}"
    elif p.kind == "float":
        text = "a number" + (f" {rng}" if rng else "")
    elif p.kind == "bool":
        text = "true or false"
    elif p.kind == "choice":
        text = "one of " + ", ".join(_show(c) for c in p.choices or ())
    elif p.kind in ("ints", "floats"):
        each = "integers" if p.kind == "ints" else "numbers"
        size = f"{p.length} " if p.length is not None else ""
        text = f"a list of {size}{each}" + (f" {rng}" if rng else "")
    else:
        text = "anything (undeclared)"
    if p.nullable:
        text += " or null"
    return text


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_range(p: HParam, v: float, key: str, what: str) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"{key}: {what}{_show(v)} is not a finite number; allowed: {describe(p)}")
    if p.minimum is not None and (v <= p.minimum if p.exclusive_minimum else v < p.minimum):
        word = "not above" if p.exclusive_minimum else "below"
        raise ConfigError(f"{key}: {what}{_show(v)} is {word} its minimum {_num(p.minimum)}; allowed: {describe(p)}")
    if p.maximum is not None and (v >= p.maximum if p.exclusive_maximum else v > p.maximum):
        word = "not below" if p.exclusive_maximum else "above"
        raise ConfigError(f"{key}: {what}{_show(v)} is {word} its maximum {_num(p.maximum)}; allowed: {describe(p)}")


def _wrong_type(p: HParam, value: Any, key: str) -> ConfigError:
    hint = ""
    if isinstance(value, str) and p.kind in ("float", "floats"):
        try:
            float(value)
            hint = " (YAML reads a number such as 1e-5 without a dot as text: write 1.0e-5)"
        except ValueError:
            pass
    return ConfigError(f"{key}: {_show(value)} is {_type_name(value)}, expected {describe(p)}{hint}")


def check_value(p: HParam, value: Any, key: str) -> None:
    """ConfigError naming ``key`` if ``value`` is not allowed by ``p``."""
    if p.kind == "any" or (value is None and p.nullable):
        return
    if p.kind == "choice":
        if not any(value == c and type(value) is type(c) for c in p.choices or ()):
            raise ConfigError(f"{key}: unknown {_show(value)}; allowed: {describe(p)}")
        return
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise _wrong_type(p, value, key)
        return
    if p.kind in ("int", "float"):
        if not (_is_int(value) if p.kind == "int" else _is_number(value)):
            raise _wrong_type(p, value, key)
        _check_range(p, value, key, "")
        if p.multiple_of and value % p.multiple_of:
            raise ConfigError(f"{key}: {_show(value)} is not a multiple of {p.multiple_of}; allowed: {describe(p)}"
                              + (f" ({p.doc})" if p.doc else ""))
        return
    # lists
    if not isinstance(value, (list, tuple)) or not all(
            _is_int(v) if p.kind == "ints" else _is_number(v) for v in value):
        raise _wrong_type(p, value, key)
    if p.length is not None and len(value) != p.length:
        raise ConfigError(f"{key}: {_show(list(value))} has {len(value)} entries; allowed: {describe(p)}")
    for i, v in enumerate(value):
        _check_range(p, v, key, f"entry {i} ")


def check_hparams(params: Iterable[HParam], hp: Mapping[str, Any], where: str) -> None:
    """Check every declared hyper-parameter of ``hp`` (missing ones too); ConfigError naming
    ``<where>.<key>`` and what is allowed."""
    params = list(params)
    missing = [p.name for p in params if p.name not in hp]
    if missing:
        raise ConfigError(f"{where}: hyper-parameters {missing} missing")
    for p in params:
        check_value(p, hp[p.name], f"{where}.{p.name}")


# -- rendering ---------------------------------------------------------------------------------
def _md(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return _show(value).replace("'", "")


def markdown_table(params: Iterable[HParam], families: Sequence[str] = (), fallback: str = "mirflickr25k") -> str:
    """A Markdown table of the declaration: key, allowed, default, per-family values, source."""
    rows = ["| key | allowed | default | per benchmark | source |", "|---|---|---|---|---|"]
    for p in params:
        fams = ", ".join(f"{f}: {_md(v)}" for f, v in p.per_family.items())
        source = p.source + (f"; per benchmark: {p.family_source}" if p.family_source else "")
        cells = [f"`{p.name}`", describe(p), f"`{_md(p.default)}`", fams, source]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if families:
        rows.append("")
        rest = (f"borrows the {fallback} values, logged as borrowed" if fallback in families
                else "runs at the defaults")  # e.g. RSHNL, which publishes Wikipedia only
        rows.append("Published settings for: " + ", ".join(families) + f" (any other benchmark {rest}).")
    return "\n".join(rows)


def hparams_markdown(classes: Iterable[type]) -> str:
    """One ``### <method>`` section per method class: its declared hyper-parameters as a table
    (the README's generated section, ``cmhash hparams --markdown``)."""
    parts = []
    for cls in classes:
        families = list(getattr(cls, "per_dataset", {}) or {})
        ref = getattr(cls, "reference", "")
        intro = f"Sources cite {ref}.\n\n" if ref else ""
        fallback = getattr(cls, "fallback_family", "mirflickr25k")
        parts.append(f"### `{cls.name}`\n\n{intro}{markdown_table(cls.hyperparameters, families, fallback)}\n")
    return "\n".join(parts)


__all__ = ["KINDS", "Bool", "Choice", "Float", "Floats", "HParam", "Int", "Ints", "check_hparams", "check_value",
           "citation", "defaults_of", "describe", "hparams_markdown", "markdown_table", "per_dataset_of", "undeclared"]
