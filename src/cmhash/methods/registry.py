"""The method registry, methods from other packages (entry points) and hyper-parameter resolution.

Built-in methods register with :func:`register` when :mod:`cmhash.methods` is imported. Other
packages add methods through the entry-point group ``cmhash.methods`` (``name = module:Class``,
in their ``pyproject.toml`` under ``[project.entry-points."cmhash.methods"]``), found by
:func:`load_plugins` when :mod:`cmhash.methods` is imported. A broken entry point (its module
fails to import, it names no attribute of it, the attribute is not a :class:`HashingMethod`
subclass, or it takes a registered name) is logged as a warning and remembered
(:data:`PLUGIN_ERRORS`): the built-in methods keep working, and only a config that uses it fails,
with the entry point's error.
"""
from __future__ import annotations

import logging
from typing import Any

from cmhash.errors import ConfigError
from cmhash.families import FAMILIES
from cmhash.methods.base import HashingMethod
from cmhash.methods.hparams import check_hparams

log = logging.getLogger("cmhash")

METHODS: dict[str, type[HashingMethod]] = {}
#: The entry-point group other packages register methods under.
ENTRY_POINT_GROUP = "cmhash.methods"
#: Methods loaded from entry points: name -> the entry point, as ``name = module:Class (dist)``.
PLUGINS: dict[str, str] = {}
#: Entry points that could not be loaded: name -> the error, naming the entry point.
PLUGIN_ERRORS: dict[str, str] = {}


def register(cls: type[HashingMethod]) -> type[HashingMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    unknown = sorted(set(cls.per_dataset) - set(FAMILIES))
    if unknown:
        raise ValueError(f"{cls.__name__}.per_dataset: {unknown} are not benchmark families {FAMILIES}")
    if cls.fallback_family not in FAMILIES:
        raise ValueError(f"{cls.__name__}.fallback_family: {cls.fallback_family!r} is not a benchmark family {FAMILIES}")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[HashingMethod]:
    """The registered class for ``name``; ConfigError naming the key otherwise."""
    if name in PLUGIN_ERRORS and name not in METHODS:
        raise ConfigError(PLUGIN_ERRORS[name])
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}' (config key grid.methods); known: {sorted(METHODS)}")
    return METHODS[name]


def _describe_entry_point(ep: Any) -> str:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    return f"entry point '{ep.name} = {ep.value}' (group {ENTRY_POINT_GROUP}{f', distribution {dist}' if dist else ''})"


def _load_entry_point(ep: Any) -> type[HashingMethod]:
    """The method class of one entry point, registered; ValueError or TypeError saying what is wrong."""
    try:
        obj = ep.load()
    except ImportError as exc:
        raise ValueError(f"its module cannot be imported ({type(exc).__name__}: {exc})") from exc
    except AttributeError as exc:
        raise ValueError(f"its module has no attribute {ep.value.partition(':')[2]!r} ({exc})") from exc
    except Exception as exc:  # a plugin's module may raise anything while it is imported
        raise ValueError(f"importing it raised {type(exc).__name__}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, HashingMethod)):
        raise TypeError(f"{ep.value} is {obj!r}, not a subclass of cmhash.methods.HashingMethod")
    if METHODS.get(ep.name) not in (None, obj):
        raise ValueError(f"the name '{ep.name}' is already registered by {METHODS[ep.name].__module__}."
                         f"{METHODS[ep.name].__qualname__}")
    if obj.name and obj.name != ep.name:
        raise ValueError(f"the class's name is '{obj.name}', not the entry point's '{ep.name}'")
    if not obj.name:
        obj.name = ep.name
    register(obj)
    return obj


def load_plugins(entry_points: Any = None) -> None:
    """Register the methods of every entry point of group ``cmhash.methods`` (or of
    ``entry_points``); a broken one is logged and kept in :data:`PLUGIN_ERRORS`."""
    if entry_points is None:
        from importlib.metadata import entry_points as all_entry_points

        entry_points = all_entry_points(group=ENTRY_POINT_GROUP)
    for ep in entry_points:
        label = _describe_entry_point(ep)
        try:
            _load_entry_point(ep)
        except (ValueError, TypeError) as exc:
            PLUGIN_ERRORS[ep.name] = f"method '{ep.name}' from {label} cannot be used: {exc}"
            log.warning("%s (the other methods are unaffected)", PLUGIN_ERRORS[ep.name])
            continue
        PLUGIN_ERRORS.pop(ep.name, None)
        PLUGINS[ep.name] = label


def resolve_hparams(name: str, family: str | None, overrides: dict[str, Any] | None = None, *,
                    where: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolve a method's hyper-parameters for a dataset of benchmark ``family``.

    ``family`` is the dataset's source's published benchmark (:func:`cmhash.data.source_family`,
    one of :data:`cmhash.families.FAMILIES`, or None for a generated set), never the name the
    config gives the dataset. Order: the method's published defaults, then its published values
    for ``family`` (a family the method does not publish borrows the values of its
    ``fallback_family``, MIRFlickr-25K unless the method says otherwise), then ``overrides`` from
    the config. Returns (hp, provenance) where provenance maps each key to ``published``,
    ``published:<family>``, ``borrowed:<fallback family>`` or ``config``.

    Every value is checked against the method's declaration (:mod:`cmhash.methods.hparams`);
    errors name ``<where>.<key>`` (``where`` defaults to ``methods.<name>``; a named variant
    passes its own config key).
    """
    cls = get_method(name)
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"benchmark family {family!r} unknown; known: {FAMILIES}")
    hp: dict[str, Any] = dict(cls.defaults)
    provenance = {key: "published" for key in hp}
    if family in cls.per_dataset:
        source, values = f"published:{family}", cls.per_dataset[family]
    else:
        fallback = cls.fallback_family
        source, values = f"borrowed:{fallback}", cls.per_dataset.get(fallback, {})
    for key, value in values.items():
        hp[key], provenance[key] = value, source
    where = where or f"methods.{name}"
    for key, value in (overrides or {}).items():
        if key not in hp:
            raise ConfigError(f"{where}.{key}: unknown hyper-parameter; known: {sorted(hp)}")
        hp[key], provenance[key] = value, "config"
    check_hparams(cls.hyperparameters, hp, where)
    return hp, provenance
