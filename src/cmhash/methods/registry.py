"""The method registry and hyper-parameter resolution."""
from __future__ import annotations

from typing import Any

from cmhash.errors import ConfigError
from cmhash.methods.base import HashingMethod

METHODS: dict[str, type[HashingMethod]] = {}

#: Datasets whose published hyper-parameters are looked up under another name.
DATASET_FAMILY = {"embedded": "mirflickr25k"}
FALLBACK_DATASET = "mirflickr25k"


def register(cls: type[HashingMethod]) -> type[HashingMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[HashingMethod]:
    """The registered class for ``name``; ConfigError naming the key otherwise."""
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}' (config key grid.methods); known: {sorted(METHODS)}")
    return METHODS[name]


def resolve_hparams(name: str, dataset: str, overrides: dict[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolve a method's hyper-parameters for ``dataset``.

    Order: the method's published defaults, then its published per-dataset values (a dataset
    the paper does not cover borrows the MIRFlickr-25K values), then ``overrides`` from the
    config. Returns (hp, provenance) where provenance maps each key to ``published``,
    ``published:<dataset>``, ``borrowed:mirflickr25k`` or ``config``.
    """
    cls = get_method(name)
    family = DATASET_FAMILY.get(dataset, dataset)
    hp: dict[str, Any] = dict(cls.defaults)
    provenance = {key: "published" for key in hp}
    if family in cls.per_dataset:
        source, values = f"published:{family}", cls.per_dataset[family]
    else:
        source, values = f"borrowed:{FALLBACK_DATASET}", cls.per_dataset.get(FALLBACK_DATASET, {})
    for key, value in values.items():
        hp[key], provenance[key] = value, source
    for key, value in (overrides or {}).items():
        if key not in hp:
            raise ConfigError(f"methods.{name}.{key}: unknown hyper-parameter; known: {sorted(hp)}")
        hp[key], provenance[key] = value, "config"
    return hp, provenance
