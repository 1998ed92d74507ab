"""The method registry and hyper-parameter resolution."""
from __future__ import annotations

from typing import Any

from cmhash.errors import ConfigError
from cmhash.families import FALLBACK_FAMILY, FAMILIES
from cmhash.methods.base import HashingMethod

METHODS: dict[str, type[HashingMethod]] = {}


def register(cls: type[HashingMethod]) -> type[HashingMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    unknown = sorted(set(cls.per_dataset) - set(FAMILIES))
    if unknown:
        raise ValueError(f"{cls.__name__}.per_dataset: {unknown} are not benchmark families {FAMILIES}")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[HashingMethod]:
    """The registered class for ``name``; ConfigError naming the key otherwise."""
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}' (config key grid.methods); known: {sorted(METHODS)}")
    return METHODS[name]


def resolve_hparams(name: str, family: str | None, overrides: dict[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolve a method's hyper-parameters for a dataset of benchmark ``family``.

    ``family`` is the dataset's source's published benchmark (:func:`cmhash.data.source_family`,
    one of :data:`cmhash.families.FAMILIES`, or None for a generated set), never the name the
    config gives the dataset. Order: the method's published defaults, then its published values
    for ``family`` (a family the method does not publish borrows the MIRFlickr-25K values), then
    ``overrides`` from the config. Returns (hp, provenance) where provenance maps each key to
    ``published``, ``published:<family>``, ``borrowed:mirflickr25k`` or ``config``.
    """
    cls = get_method(name)
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"benchmark family {family!r} unknown; known: {FAMILIES}")
    hp: dict[str, Any] = dict(cls.defaults)
    provenance = {key: "published" for key in hp}
    if family in cls.per_dataset:
        source, values = f"published:{family}", cls.per_dataset[family]
    else:
        source, values = f"borrowed:{FALLBACK_FAMILY}", cls.per_dataset.get(FALLBACK_FAMILY, {})
    for key, value in values.items():
        hp[key], provenance[key] = value, source
    for key, value in (overrides or {}).items():
        if key not in hp:
            raise ConfigError(f"methods.{name}.{key}: unknown hyper-parameter; known: {sorted(hp)}")
        hp[key], provenance[key] = value, "config"
    return hp, provenance
