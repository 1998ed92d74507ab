"""Configuration: loading, semantic checks against the registries, and the grid of cells.

Structural checks (types, ranges, unknown keys) live in the JSON schema
``workflow/schemas/config.schema.yaml`` (run by ``snakemake.utils.validate`` in the workflow and
by ``validate_schema`` here); ``check_config`` adds what needs the registries: unknown methods,
datasets, sources and noise models. Every error names the offending key.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml

from cmhash.cell import GRID_AXES, Cell
from cmhash.errors import ConfigError

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return cfg


def validate_schema(cfg: dict[str, Any], schema_path: str | Path = DEFAULT_SCHEMA) -> None:
    """Validate against the JSON schema (also fills defaults is NOT done here), naming the key."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        raise ConfigError(f"config key '{key}': {err.message}")


def check_config(cfg: dict[str, Any]) -> None:
    """Semantic checks that need the registries; raises ConfigError naming the key."""
    from cmhash.data import SOURCES, known_sources, source_family
    from cmhash.data.published import configured_noise_file
    from cmhash.data.sizes import check_split_fits
    from cmhash.methods import METHODS, PLUGIN_ERRORS, resolve_hparams
    from cmhash.noise import PUBLISHED, known_noise_models

    for name, ds in cfg["datasets"].items():
        if ds["source"] not in known_sources():
            raise ConfigError(f"datasets.{name}.source: unknown source '{ds['source']}'; known: {known_sources()}")
        check_split_fits(name, ds, SOURCES[ds["source"]].kind)
    for name, entry in (cfg.get("methods") or {}).items():
        base = (entry or {}).get("variant_of")
        for used, key in ((name, f"methods.{name}"), (base, f"methods.{name}.variant_of")):
            if used in PLUGIN_ERRORS and used not in METHODS:
                raise ConfigError(f"{key}: {PLUGIN_ERRORS[used]}")
        if base is not None and base not in METHODS:
            raise ConfigError(f"methods.{name}.variant_of: unknown method '{base}'; known: {sorted(METHODS)}")
        if base is not None and name in METHODS:
            raise ConfigError(f"methods.{name}: a variant cannot take the name of the registered method '{name}'")
        if base is None and name not in METHODS:
            raise ConfigError(f"methods.{name}: unknown method; known: {sorted(METHODS)} (or give it "
                              f"`variant_of: <method>` to declare a variant)")
    variants = sorted(n for n, e in (cfg.get("methods") or {}).items() if (e or {}).get("variant_of"))
    for key, grid in grids(cfg):
        for name in grid["datasets"]:
            if name not in cfg["datasets"]:
                raise ConfigError(f"{key}.datasets: '{name}' has no entry under datasets "
                                  f"(known: {sorted(cfg['datasets'])})")
        for method in grid["methods"]:
            if method in PLUGIN_ERRORS and method not in METHODS:
                raise ConfigError(f"{key}.methods: {PLUGIN_ERRORS[method]}")
            if method not in METHODS and method not in variants:
                raise ConfigError(f"{key}.methods: unknown method '{method}'; known: {sorted(METHODS)}, "
                                  f"variants declared under methods: {variants}")
            chosen = cell_settings(cfg, method, grid["datasets"][0])
            runs = chosen.get("variant_of", method)
            for dataset in grid["datasets"]:  # a wrong hyper-parameter is named before any job starts
                resolve_hparams(runs, source_family(cfg["datasets"][dataset]["source"]),
                                chosen["methods"], where=f"methods.{method}")
                n_validation = int((cfg["datasets"][dataset].get("split") or {}).get("n_validation", 0))
                needs_validation = ("sound" in grid["protocols"]
                                    or ("paper" in grid["protocols"] and METHODS[runs].paper_selection.split == "validation"))
                if needs_validation and n_validation <= 0:
                    raise ConfigError(f"datasets.{dataset}.split.n_validation: {method} "
                                      f"{'under `sound`' if 'sound' in grid['protocols'] else 'under `paper`'} selects on a "
                                      "validation split; give it a positive number of rows")
        for model in grid["noise_models"]:
            if model not in known_noise_models():
                raise ConfigError(f"{key}.noise_models: unknown noise model '{model}'; "
                                  f"known: {known_noise_models()}")
        for rate in grid["noise_rates"]:
            if not 0 <= float(rate) < 1:
                raise ConfigError(f"{key}.noise_rates: {rate} is outside [0, 1)")
        if PUBLISHED in grid["noise_models"]:
            for dataset, rate in itertools.product(grid["datasets"], grid["noise_rates"]):
                path = configured_noise_file(dataset, cfg["datasets"][dataset], rate)
                if float(rate) > 0 and not path.is_file():
                    raise ConfigError(f"datasets.{dataset}.published_noise: {path} not found (needed by "
                                      f"{key}.noise_models 'published' at rate {rate})")
    check_robustness(cfg)


#: The robustness study's settings and their defaults (config key ``report.robustness``).
ROBUSTNESS_DEFAULTS: dict[str, Any] = {"baseline": "baseline", "alpha": 0.05, "protocol": "sound"}


def robustness_settings(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The robustness study's settings (``report.robustness`` over :data:`ROBUSTNESS_DEFAULTS`),
    or None when the config asks for no robustness outputs."""
    given = (cfg.get("report") or {}).get("robustness")
    return None if given is None else {**ROBUSTNESS_DEFAULTS, **given}


def robustness_datasets(cfg: dict[str, Any]) -> list[str]:
    """The datasets with robustness outputs: every grid dataset, in grid order, when the config
    asks for them (``report.robustness``), else none."""
    if robustness_settings(cfg) is None:
        return []
    return list(dict.fromkeys(c.dataset for c in cells(cfg)))


def check_robustness(cfg: dict[str, Any]) -> None:
    """``report.robustness``: its reference method must run on every grid dataset at the studied
    protocol (every other method is tested against it there). ConfigError naming the key."""
    settings = robustness_settings(cfg)
    if settings is None:
        return
    grid_cells = cells(cfg)
    protocols = sorted({c.protocol for c in grid_cells})
    if settings["protocol"] not in protocols:
        raise ConfigError(f"report.robustness.protocol: '{settings['protocol']}' is not a protocol of the grid "
                          f"(grid protocols: {protocols})")
    for dataset in robustness_datasets(cfg):
        methods = sorted({c.method for c in grid_cells if c.dataset == dataset and c.protocol == settings["protocol"]})
        if settings["baseline"] not in methods:
            raise ConfigError(f"report.robustness.baseline: '{settings['baseline']}' is not a grid method on dataset "
                              f"'{dataset}' under protocol '{settings['protocol']}' (its methods there: {methods}); "
                              "every other method is tested against it")


def resolved_hparams(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every grid method's resolved hyper-parameters on every grid dataset of the (checked)
    config, with their provenance and its citation (``cmhash validate-config --show``): one
    entry per (method, dataset) with ``method``, ``runs`` (the registered method a variant
    runs), ``dataset``, ``family`` and ``rows`` of (key, value, provenance, source)."""
    from cmhash.data import source_family
    from cmhash.methods import get_method, resolve_hparams
    from cmhash.methods.hparams import citation

    out, seen = [], set()
    for _, grid in grids(cfg):
        for method, dataset in itertools.product(grid["methods"], grid["datasets"]):
            if (method, dataset) in seen:
                continue
            seen.add((method, dataset))
            chosen = cell_settings(cfg, method, dataset)
            runs = chosen.get("variant_of", method)
            family = source_family(cfg["datasets"][dataset]["source"])
            hp, provenance = resolve_hparams(runs, family, chosen["methods"], where=f"methods.{method}")
            declared = {p.name: p for p in get_method(runs).hyperparameters}
            rows = [(key, value, provenance[key], citation(declared[key], provenance[key]) if key in declared else "")
                    for key, value in hp.items()]
            out.append({"method": method, "runs": runs, "dataset": dataset, "family": family, "rows": rows})
    return out


def load_and_check(path: str | Path) -> dict[str, Any]:
    cfg = load_config(path)
    validate_schema(cfg)
    check_config(cfg)
    return cfg


def grids(cfg: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The grid and each ``grid.also`` entry completed from it, as (config key, axes) pairs."""
    main = {axis: cfg["grid"][axis] for axis in GRID_AXES}
    extra = [(f"grid.also.{i}", {**main, **part}) for i, part in enumerate(cfg["grid"].get("also") or [])]
    return [("grid", main), *extra]


def cells(cfg: dict[str, Any]) -> list[Cell]:
    """Every cell of the grid and of its ``also`` grids, in a fixed order, each once."""
    seen: dict[Cell, None] = {}
    for _, g in grids(cfg):
        axes = {**g, "noise_rates": [float(r) for r in g["noise_rates"]]}
        for values in itertools.product(*(axes[axis] for axis in GRID_AXES)):
            seen.setdefault(Cell(*values), None)
    return list(seen)


def reads_labels(cfg: dict[str, Any], method: str, protocol: str) -> bool:
    """Whether grid method ``method`` (a registered method or a named variant) reads training
    labels under ``protocol`` (its ``needs()``); one that does not is label-free."""
    from cmhash.methods import get_method

    return get_method(cell_settings(cfg, method, "").get("variant_of", method)).needs(protocol).labels


def training_cell(cfg: dict[str, Any], cell: Cell) -> Cell:
    """The cell that trains ``cell``'s model: ``cell`` itself, or for a label-free method the
    one cell it shares with every noise model and rate (:meth:`Cell.as_label_free`)."""
    return cell if reads_labels(cfg, cell.method, cell.protocol) else cell.as_label_free()


def training_cells(cfg: dict[str, Any]) -> list[Cell]:
    """Every training job of the grid, each once, in the order of :func:`cells`."""
    return list(dict.fromkeys(training_cell(cfg, c) for c in cells(cfg)))


# Dataset keys that only the training stage reads (the data and feature stages never see them).
TRAINING_ONLY_DATASET_KEYS = ("standardize_features",)


def cell_settings(cfg: dict[str, Any], method: str, dataset: str) -> dict[str, Any]:
    """What of the config shapes one training cell besides the cell itself: the method's
    hyper-parameter overrides (``methods.<method>``), the registered method a named variant
    runs (``variant_of``, present only for a variant) and the dataset's feature scaling
    (``datasets.<dataset>.standardize_features``, default false). The training stage reads
    them here, and the workflow's train rule records them as params, so a change to either
    reruns exactly the cells it concerns."""
    overrides = dict((cfg.get("methods") or {}).get(method) or {})
    base = overrides.pop("variant_of", None)
    return {"methods": overrides, **({"variant_of": base} if base else {}),
            "standardize_features": bool(((cfg.get("datasets") or {}).get(dataset) or {}).get(
                "standardize_features", False))}


def train_params(cfg: dict[str, Any], method: str, dataset: str) -> dict[str, Any]:
    """Every setting that changes a training cell's result, as the train rule's params (a change
    reruns exactly the cells it concerns): :func:`cell_settings`, plus the evaluation's tie
    order where the method keeps its best-scoring epoch (``selection: best``), since the ties
    move the selection scores; a method that keeps its last epoch does not depend on them."""
    from cmhash.data import source_family
    from cmhash.methods import resolve_hparams

    chosen = cell_settings(cfg, method, dataset)
    hp, _ = resolve_hparams(chosen.get("variant_of", method), source_family(cfg["datasets"][dataset]["source"]),
                            chosen["methods"])
    if hp["selection"] == "best":
        chosen["ties"] = evaluate_params(cfg)["ties"]
    return chosen


#: The evaluation settings and their defaults (config key ``evaluation``).
EVALUATION_DEFAULTS: dict[str, Any] = {"ties": "stable", "precision_at": [1, 10, 50, 100, 500, 1000]}


def evaluate_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The evaluation settings every evaluate job's result depends on (its rule's params)."""
    return {**EVALUATION_DEFAULTS, **(cfg.get("evaluation") or {})}
