"""The robustness study: which method survives which noise, with significance (issue 21).

From the runs of one dataset (the frames of :func:`cmhash.pipeline.collect_results` and
:func:`cmhash.report.collect.load_diagnostics`), at one protocol and bit length:

* :func:`run_map`: one mAP per run, the mean of its retrieval directions (i2t and t2i; a fused
  method's one direction, ``fused``, alone);
* :func:`map_table`: mean ± std over seeds per method, noise model and rate, and each method's
  clean-label mAP (its runs at rate 0, column :data:`CLEAN`), each cell tested against the
  reference method by a seed-paired t-test with Holm's correction over the table's comparisons
  (:mod:`cmhash.report.significance`); :func:`map_table_latex` typesets it;
* :func:`map_vs_rate`: the figure, mAP against the rate, a panel per noise model, a line per
  method (band = spread over seeds), the clean-label mAP at rate 0 of every panel;
* :func:`selection_auc`: the ROC-AUC of each method's per-row clean score against the true
  corruption mask (``select/auc``, :mod:`cmhash.diagnostics`) at the last epoch that logged it,
  per noise model and rate; :func:`selection_auc_latex` typesets it.

:func:`write_robustness` writes them all for one dataset (the workflow's ``robustness`` rule).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from cmhash import diagnostics
from cmhash.cell import COLUMNS
from cmhash.io import atomic_path, save_text
from cmhash.noise import NOISE_MODELS, PUBLISHED
from cmhash.pipeline import collect_results
from cmhash.report.collect import load_diagnostics
from cmhash.report.figures import (
    _semantics,
    _theme,
    _wrap,
    message_figure,
    pick_bits,
    save_figure,
)
from cmhash.report.significance import mark_significant, paired_tests
from cmhash.report.tables import _escape, latex_document

#: The clean-label column: a method's runs at rate 0 (whatever noise model names them).
CLEAN = "clean"
#: A method's task: cross-modal (i2t and t2i codes) or fused (one code per pair, DCGMH; the
#: name of its one direction, as :data:`cmhash.methods.base.FUSED`, which the report does not import).
CROSS_MODAL, FUSED = "cross-modal", "fused"
#: The selection module each method's ``select/auc`` scores (labels of the AUC table).
SELECTION_MODULES = {"nrch": "separator", "scbch": "CSCC", "dcgmh": "filter"}
#: What a table's cell is keyed by besides its method: the study's fixed axes and its column.
TABLE_KEYS = ["dataset", "protocol", "bits", "noise_model", "rate"]
#: One table: the comparisons that Holm's correction adjusts together.
FAMILY = ["dataset", "protocol", "bits"]
#: The mAP table's CSV columns (one row per dataset, method, noise model and rate).
TABLE_COLUMNS = [*TABLE_KEYS, "method", "task", "label_free", "mean", "std", "n", "test", "reference", "n_pairs",
                 "mean_difference", "t", "p", "p_holm", "significant", "sign"]
#: The AUC table's CSV columns.
AUC_COLUMNS = [*TABLE_KEYS, "method", "module", "mean", "std", "n", "epoch"]
TESTED, REFERENCE = "paired t-test", "reference"
MARKS = {"higher": r"$^{\uparrow}$", "lower": r"$^{\downarrow}$"}


def run_map(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run (the cell's :data:`cmhash.cell.COLUMNS`) with ``map``, the mean of its
    directions' mAP@all (a fused method has one direction), its ``task`` (:data:`CROSS_MODAL`
    or ``fused``) and ``label_free`` (the run of a label-free method, expanded over the grid)."""
    frame = results.assign(label_free=results["label_free"].eq(True)) if "label_free" in results else \
        results.assign(label_free=False)
    out = frame.groupby(list(COLUMNS), as_index=False, sort=True).agg(
        map=("map", "mean"), directions=("direction", lambda d: "+".join(sorted(set(d)))),
        label_free=("label_free", "any"))
    out["task"] = np.where(out.pop("directions") == FUSED, FUSED, CROSS_MODAL)
    return out


def study_runs(runs: pd.DataFrame, protocol: str, bits: int | None = None) -> pd.DataFrame:
    """The runs (:func:`run_map`) at ``protocol`` and ``bits`` (default: the largest run there),
    rows at rate 0 relabelled as the :data:`CLEAN` column (runs of the same method and seed
    at rate 0 under several noise models hold the same labels: averaged into one)."""
    runs = runs[runs["protocol"] == protocol]
    if runs.empty:
        return runs.assign(noise_model=pd.Series(dtype=str))
    runs = runs[runs["bits"] == pick_bits(runs["bits"], bits)]
    runs = runs.assign(noise_model=np.where(runs["rate"] == 0, CLEAN, runs["noise_model"]))
    keys = [c for c in COLUMNS if c != "noise_model"] + ["noise_model", "task"]
    return runs.groupby(keys, as_index=False, sort=True).agg(map=("map", "mean"), label_free=("label_free", "any"))


def _model_order(models: Iterable[str]) -> list[str]:
    """:data:`CLEAN` first, then the registry's order of the noise models (unknown ones last)."""
    registry = [CLEAN, *NOISE_MODELS, PUBLISHED]
    return sorted(set(models), key=lambda m: (registry.index(m) if m in registry else len(registry), m))


def _method_order(methods: Iterable[str], reference: str) -> list[str]:
    return sorted(set(methods), key=lambda m: (m != reference, m))


def map_table(runs: pd.DataFrame, reference: str, alpha: float = 0.05) -> pd.DataFrame:
    """The mAP table of :func:`study_runs`' frame: one row per (dataset, protocol, bits, noise
    model, rate, method) with mean, std and n over seeds, and the comparison with
    ``reference`` (:data:`TABLE_COLUMNS`).

    Each method of the reference's task is tested against it in every cell it shares with it
    (:func:`cmhash.report.significance.paired_tests`, paired by seed; ``test`` = ``paired
    t-test``), the p-values Holm-adjusted over all of a table's comparisons (:data:`FAMILY`: one
    dataset at one protocol and bit length), ``significant`` where the adjusted p < ``alpha``.
    A method of another task (DCGMH's fused retrieval against cross-modal codes) is not
    compared: its ``test`` says why."""
    keys = [*TABLE_KEYS, "method"]
    summary = runs.groupby(keys, as_index=False, sort=True).agg(
        task=("task", "first"), label_free=("label_free", "any"), mean=("map", "mean"), std=("map", "std"),
        n=("map", "count"))
    tasks = set(runs.loc[runs["method"] == reference, "task"])
    if len(tasks) > 1:
        raise ValueError(f"reference method '{reference}' runs more than one task ({sorted(tasks)})")
    task = tasks.pop() if tasks else None
    tests = paired_tests(runs[runs["task"] == task], reference, TABLE_KEYS)
    marked = mark_significant(tests, alpha, FAMILY) if len(tests) else tests.assign(
        p_holm=pd.Series(dtype=float), significant=pd.Series(dtype=bool), sign=pd.Series(dtype=str))
    out = summary.merge(marked, on=keys, how="left")
    out["test"] = np.select(
        [out["method"] == reference, out["task"] != task, out["p"].notna()],
        [REFERENCE, f"not tested: another task than {reference}'s ({task})", TESTED],
        default="not tested: fewer than two seeds shared with the reference, or the same value at every seed")
    out["reference"] = reference
    out["significant"] = out["significant"].eq(True)
    out["sign"] = out["sign"].fillna("")
    order = {m: i for i, m in enumerate(_model_order(out["noise_model"]))}
    methods = {m: i for i, m in enumerate(_method_order(out["method"], reference))}
    out = out.assign(_m=out["noise_model"].map(order), _r=out["method"].map(methods)).sort_values(
        ["dataset", "protocol", "bits", "_r", "_m", "rate"], kind="stable").drop(columns=["_m", "_r"])
    return out[TABLE_COLUMNS].reset_index(drop=True)


def _wide_latex(cells: pd.DataFrame, rows: list[str], caption: str, label: str) -> str:
    """``cells`` (columns ``row``, ``noise_model``, ``rate``, ``text``: LaTeX already) as a
    booktabs table: a row per ``rows`` entry, a column group per noise model (:data:`CLEAN` first) and a column
    per rate, ``--`` where a cell is missing."""
    columns = sorted({(m, r) for m, r in zip(cells["noise_model"], cells["rate"])},
                     key=lambda c: (_model_order(cells["noise_model"]).index(c[0]), c[1]))
    wide = cells.pivot(index="row", columns=["noise_model", "rate"], values="text")
    wide = wide.reindex(index=rows, columns=pd.MultiIndex.from_tuples(columns)).fillna("--")
    wide.columns = pd.MultiIndex.from_tuples([(_escape(m), "" if m == CLEAN else f"{r:g}") for m, r in columns])
    wide.index.name = None
    return wide.to_latex(escape=False, multicolumn=True, multicolumn_format="c", column_format="l" + "c" * len(columns),
                         caption=caption, label=label, position="t")


def _cell_text(mean: float, std: float, n: int) -> str:
    text = f"{mean:.3f}"
    if n > 1 and np.isfinite(std):
        text += rf"\,{{\scriptsize$\pm${std:.3f}}}"
    return text


def _method_label(method: str, task: str, label_free: bool) -> str:
    return _escape(method) + (r"$^\dagger$" if label_free else "") + (f" ({task})" if task != CROSS_MODAL else "")


def map_table_latex(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """A LaTeX table per dataset (protocol, bits) of :func:`map_table`: rows methods, columns the
    clean-label mAP and noise models x rates; mean ± std over seeds; an arrow where the method
    is significantly above or below the reference. The caption names the test and what a few
    seeds can and cannot show."""
    blocks = []
    for (dataset, protocol, bits), block in table.groupby(FAMILY, sort=False):
        block = block.assign(row=[_method_label(m, t, lf) for m, t, lf in
                                  zip(block["method"], block["task"], block["label_free"])])
        block["text"] = [_cell_text(m, s, n) + MARKS.get(sign, "") for m, s, n, sign in
                         zip(block["mean"], block["std"], block["n"], block["sign"])]
        reference = block["reference"].iloc[0]
        n_tests = int((block["test"] == TESTED).sum())
        seeds = int(block["n"].max())
        caption = (
            f"mAP@all on {_escape(dataset)} ({_escape(protocol)} protocol, {bits} bits), mean of image-to-text and "
            f"text-to-image (fused retrieval for a fused method), mean $\\pm$ std over {seeds} seeds; "
            f"{CLEAN}: training labels without noise. $\\uparrow$/$\\downarrow$: above/below {_escape(reference)} "
            f"in a seed-paired t-test (scipy.stats.ttest\\_rel, two-sided) with Holm's correction over the "
            f"{n_tests} comparisons of this table, adjusted $p < {alpha:g}$. With {seeds} seeds the test has "
            f"{max(seeds - 1, 0)} degrees of freedom: it detects only differences large against their "
            "seed-to-seed spread, so an unmarked cell is no evidence that two methods are equal, and the seeds "
            "vary the noise draw and the initialisation on one fixed split, so a mark says nothing about "
            "other splits or datasets."
            + (r" $^\dagger$: label-free, trained once, the same at every noise rate." if block["label_free"].any()
               else "")
            + (f" A method of another task is not compared with {_escape(reference)}."
               if block["test"].str.startswith("not tested: another task").any() else ""))
        rows = list(dict.fromkeys(block["row"]))
        blocks.append(_wide_latex(block, rows, caption, f"tab:robustness-{dataset}-{protocol}-{bits}".replace("_", "-")))
    return "\n".join(blocks)


def map_vs_rate(runs: pd.DataFrame, pdf: str | Path, png: str | Path) -> pd.DataFrame:
    """mAP against the noise rate (:func:`study_runs`' frame of one dataset), a panel per noise
    model, a colour per method (a dash per task where a fused method runs too), the band the
    spread over seeds; every panel starts from the methods' clean-label runs at rate 0.
    Returns the rows plotted; writes a figure saying so when there are none."""
    noisy = runs[runs["noise_model"] != CLEAN]
    if noisy.empty:
        message_figure("No run under label noise at this protocol and bit length: nothing to plot.", (pdf, png))
        return noisy
    models = _model_order(noisy["noise_model"])
    clean = runs[runs["noise_model"] == CLEAN]
    data = pd.concat([noisy, *(clean.assign(noise_model=m) for m in models)], ignore_index=True)
    data = data.rename(columns={"noise_model": "noise model"})
    style = "task" if data["task"].nunique() > 1 else None
    _theme()
    grid = sns.relplot(data=data, x="rate", y="map", col="noise model", col_order=models,
                       **_semantics(data, "method", style), kind="line", marker="o", errorbar="sd",
                       height=3.0, aspect=1.1, col_wrap=_wrap(data, "noise model"))
    bits = int(data["bits"].iloc[0])
    grid.set_axis_labels("training-label noise rate", f"mAP@all ({bits} bits)")
    grid.set_titles("noise model {col_name}")
    tasks = " (fused: the fused retrieval)" if style else ""
    grid.figure.suptitle(f"{data['dataset'].iloc[0]}, {data['protocol'].iloc[0]}: mAP = mean of i2t and t2i{tasks}; "
                         "rate 0: clean labels; band: spread over seeds", y=1.03)
    save_figure(grid.figure, (pdf, png))
    return data


def selection_auc(history: pd.DataFrame, protocol: str, bits: int | None = None) -> pd.DataFrame:
    """The AUC of each method's clean score against the true corruption mask
    (:data:`cmhash.diagnostics.AUC`; rows of :func:`cmhash.report.collect.load_diagnostics`) at
    the last epoch of each run that logged it, mean ± std over seeds per (dataset, method,
    noise model, rate) at ``protocol`` and ``bits`` (default: the largest run there), with the
    latest such ``epoch`` and the selection ``module`` (:data:`SELECTION_MODULES`). Rate 0 has
    no corrupted row, hence no AUC."""
    name = diagnostics.AUC.removeprefix(diagnostics.PREFIX)
    auc = history[(history["diagnostic"] == name) & (history["protocol"] == protocol) & (history["rate"] > 0)]
    if auc.empty:
        return pd.DataFrame(columns=AUC_COLUMNS)
    auc = auc[auc["bits"] == pick_bits(auc["bits"], bits)]
    last = auc.loc[auc.groupby(list(COLUMNS), sort=False)["epoch"].idxmax()]
    out = last.groupby([*TABLE_KEYS, "method"], as_index=False, sort=True).agg(
        mean=("value", "mean"), std=("value", "std"), n=("value", "count"), epoch=("epoch", "max"))
    out["module"] = out["method"].map(SELECTION_MODULES).fillna("clean score")
    order = {m: i for i, m in enumerate(_model_order(out["noise_model"]))}
    out = out.assign(_m=out["noise_model"].map(order)).sort_values(["dataset", "method", "_m", "rate"], kind="stable")
    return out[AUC_COLUMNS].reset_index(drop=True)


def selection_auc_latex(auc: pd.DataFrame, dataset: str, protocol: str) -> str:
    """A LaTeX table of :func:`selection_auc`: rows methods (their selection module), columns
    noise models x rates, mean ± std over seeds; a sentence where no method logged the AUC."""
    if auc.empty:
        return (f"No method of this grid logs the selection AUC on {_escape(dataset)} ({_escape(protocol)} protocol) "
                "under label noise.\n")
    auc = auc.assign(row=[f"{_escape(m)} ({_escape(module)})" for m, module in zip(auc["method"], auc["module"])],
                     text=[_cell_text(m, s, n) for m, s, n in zip(auc["mean"], auc["std"], auc["n"])])
    bits = int(auc["bits"].iloc[0])
    caption = (f"Noise detection on {_escape(dataset)} ({_escape(protocol)} protocol, {bits} bits): ROC-AUC of "
               "each method's per-row clean score (NRCH: its separator's, SCBCH: its CSCC weights, DCGMH: its "
               "filter's consistency score) against the true corruption mask, which the method never sees, at "
               "the last epoch that logged it; mean $\\pm$ std over seeds. 0.5: no better than chance.")
    return _wide_latex(auc, list(dict.fromkeys(auc["row"])), caption,
                       f"tab:selection-auc-{dataset}-{protocol}".replace("_", "-"))


def write_robustness(metric_files: Sequence[str | Path], dataset: str, figure_pdf: str | Path,
                     figure_png: str | Path, table_csv: str | Path, table_tex: str | Path, auc_csv: str | Path,
                     auc_tex: str | Path, grid: list[dict[str, Any]] | None = None, reference: str = "baseline",
                     alpha: float = 0.05, protocol: str = "sound", bits: int | None = None) -> pd.DataFrame:
    """Every robustness output of ``dataset`` from its runs' ``metrics.json`` files (with their
    ``config.json`` and ``history.csv`` beside them): the figure, the mAP table (CSV, LaTeX)
    and the selection AUC table (CSV, LaTeX), at ``protocol`` and ``bits`` (default: the
    largest run). ``grid``: the grid's cells, over which a label-free run is expanded. Returns
    the mAP table."""
    results = pd.DataFrame(collect_results(list(metric_files), grid))
    results = results[results["dataset"] == dataset] if len(results) else results
    if results.empty:
        raise ValueError(f"robustness report of '{dataset}': no run of this dataset among the inputs")
    runs = study_runs(run_map(results), protocol, bits)
    table = map_table(runs, reference, alpha)
    with atomic_path(table_csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    save_text(table_tex, latex_document(map_table_latex(table, alpha)))
    map_vs_rate(runs, figure_pdf, figure_png)
    history = load_diagnostics(metric_files)
    auc = selection_auc(history[history["dataset"] == dataset], protocol, bits)
    with atomic_path(auc_csv, suffix=".csv") as tmp:
        auc.to_csv(tmp, index=False)
    save_text(auc_tex, latex_document(selection_auc_latex(auc, dataset, protocol)))
    return table
