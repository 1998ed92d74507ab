"""The cell: one training job of the grid, its axes, and where its files live.

This module is the one owner of the results layout. The workflow's rules, the command line,
the pipeline and the report build every path from the templates below, written with the
wildcard names Snakemake fills (``{dataset}``, ``{method}``, ...), so an axis or a path changes
here and nowhere else.

Layout (DESIGN.md, "Files between rules"):

* ``results/datasets/{dataset}/`` — the canonical dataset;
* ``results/noise/{dataset}/{noise_model}-{rate}/seed{seed}/`` — noisy training labels;
* ``results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/`` —
  one trained cell, or, for a method that reads no label,
  ``results/runs/{dataset}/{method}/label-free/bits{bits}/seed{seed}/{protocol}/``
  (:data:`LABEL_FREE_RUN`): trained once, whatever the noise;
* ``results/report/robustness/{dataset}/`` — the robustness study's outputs of a dataset.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

RESULTS = "results"

#: The cell's axes, in order: the Cell's fields, the wildcard names, the report's columns.
COLUMNS: tuple[str, ...] = ("dataset", "method", "noise_model", "rate", "bits", "seed", "protocol")
#: The config's grid key of each axis (``grid.<key>``), in the same order.
GRID_AXES: tuple[str, ...] = ("datasets", "methods", "noise_models", "noise_rates", "bits", "seeds", "protocols")

DATASET = f"{RESULTS}/datasets/{{dataset}}"
NOISE = f"{RESULTS}/noise/{{dataset}}/{{noise_model}}-{{rate}}/seed{{seed}}"
NOISE_LOG = f"{RESULTS}/logs/noise/{{dataset}}/{{noise_model}}-{{rate}}-seed{{seed}}.log"
RUN = f"{RESULTS}/runs/{{dataset}}/{{method}}/{{noise_model}}-{{rate}}/bits{{bits}}/seed{{seed}}/{{protocol}}"
LABEL_FREE_RUN = f"{RESULTS}/runs/{{dataset}}/{{method}}/label-free/bits{{bits}}/seed{{seed}}/{{protocol}}"
RUN_LOG = f"{RESULTS}/logs/{{stage}}/{{dataset}}/{{method}}/{{noise_model}}-{{rate}}/bits{{bits}}-seed{{seed}}-{{protocol}}.log"
LABEL_FREE_LOG = f"{RESULTS}/logs/{{stage}}/{{dataset}}/{{method}}/label-free/bits{{bits}}-seed{{seed}}-{{protocol}}.log"
#: The robustness study's outputs of one dataset (figure and tables) and their job's log.
ROBUSTNESS = f"{RESULTS}/report/robustness/{{dataset}}"
ROBUSTNESS_LOG = f"{RESULTS}/logs/robustness/{{dataset}}.log"
#: The noise model of a label-free method's training cell (its rate is 0.0): one run, whatever the noise.
LABEL_FREE = "label-free"


def format_rate(rate: float) -> str:
    """The canonical spelling of a noise rate in paths (``0.5``, ``0.0``)."""
    return repr(float(rate))


def fill(template: str, **values: Any) -> str:
    """``template`` with the given wildcards filled in (the others left as wildcards), so a rule
    can fix some axes (``fill(RUN, stage="train")``) and Snakemake fills the rest."""
    class _Keep(dict):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return template.format_map(_Keep(values))


@dataclass(frozen=True)
class Cell:
    """One training job of the grid (DESIGN.md: output paths encode all of these)."""

    dataset: str
    method: str
    noise_model: str
    rate: float
    bits: int
    seed: int
    protocol: str

    @classmethod
    def from_wildcards(cls, wildcards: Mapping[str, Any] | Any) -> Cell:
        """The cell of a Snakemake job (its wildcards, by name) or of any mapping/namespace of
        the axis names, with each value converted to its axis type."""
        get = wildcards.get if isinstance(wildcards, Mapping) else lambda k: getattr(wildcards, k, None)
        values = {f.name: get(f.name) for f in fields(cls)}
        if values["noise_model"] is None:  # a label-free training job: no noise wildcards
            values.update(noise_model=LABEL_FREE, rate=0.0)
        return cls(dataset=str(values["dataset"]), method=str(values["method"]),
                   noise_model=str(values["noise_model"]), rate=float(values["rate"]), bits=int(values["bits"]),
                   seed=int(values["seed"]), protocol=str(values["protocol"]))

    @property
    def rate_str(self) -> str:
        return format_rate(self.rate)

    @property
    def wildcards(self) -> dict[str, str]:
        """The axis values as the path templates spell them."""
        return {**{k: str(v) for k, v in asdict(self).items()}, "rate": self.rate_str}

    @property
    def label_free(self) -> bool:
        """A label-free method's training cell (:meth:`as_label_free`)."""
        return self.noise_model == LABEL_FREE

    def as_label_free(self) -> Cell:
        """The one training cell of a method that reads no label, shared by every noise model
        and rate of the grid."""
        return replace(self, noise_model=LABEL_FREE, rate=0.0)

    @property
    def run_dir(self) -> str:
        return (LABEL_FREE_RUN if self.label_free else RUN).format(**self.wildcards)

    @property
    def noise_dir(self) -> str:
        return NOISE.format(**self.wildcards)

    @property
    def dataset_dir(self) -> str:
        return DATASET.format(**self.wildcards)

    @property
    def name(self) -> str:
        """A short, readable name of the cell, e.g. ``scbch nrch-0.5 sound 64b s0 embedded``: what
        tells a grid's cells apart comes first, so the MLflow runs table's default column width
        still shows method, noise and protocol."""
        w = self.wildcards
        noise = LABEL_FREE if self.label_free else f"{w['noise_model']}-{w['rate']}"
        return f"{w['method']} {noise} {w['protocol']} {w['bits']}b s{w['seed']} {w['dataset']}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def served_cells(trained: Mapping[str, Any], grid: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The grid cells (as dicts) whose result the run of training cell ``trained`` gives: itself,
    or for a label-free run every grid cell of its (dataset, method, bits, seed, protocol),
    each marked ``label_free`` (a flat line over the noise, as the papers print these
    methods). Without ``grid``, the trained cell alone."""
    if trained.get("noise_model") != LABEL_FREE or grid is None:
        return [dict(trained)]
    same = [k for k in COLUMNS if k not in ("noise_model", "rate")]
    return [{**dict(c), "label_free": True} for c in grid if all(c[k] == trained[k] for k in same)]


#: What the report averages seeds over: a cell's columns but its seed, and the retrieval
#: direction, in the report's sort order (tables and figures list rows in this order).
SUMMARY_KEYS: tuple[str, ...] = ("dataset", "direction", "method", "protocol", "noise_model", "rate", "bits")

assert tuple(f.name for f in fields(Cell)) == COLUMNS  # one order for fields, wildcards and columns
assert set(SUMMARY_KEYS) == (set(COLUMNS) - {"seed"}) | {"direction"}

__all__ = [
    "COLUMNS",
    "DATASET",
    "GRID_AXES",
    "LABEL_FREE",
    "LABEL_FREE_LOG",
    "LABEL_FREE_RUN",
    "NOISE",
    "NOISE_LOG",
    "RESULTS",
    "ROBUSTNESS",
    "ROBUSTNESS_LOG",
    "RUN",
    "RUN_LOG",
    "SUMMARY_KEYS",
    "Cell",
    "fill",
    "format_rate",
    "served_cells",
]
