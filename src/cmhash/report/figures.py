"""seaborn figures of the results, each saved as PDF and PNG.

Every figure function takes a tidy frame (:func:`cmhash.pipeline.collect_results`, the loaders
of :mod:`cmhash.report.collect`, :func:`cmhash.report.published.delta_table`), writes the
figure and returns the rows it plotted, so what a figure shows can be checked without reading
pixels. A figure with nothing to show is still written, as a panel that says so, so that a
workflow's declared outputs always exist.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from cmhash import diagnostics
from cmhash.cell import SUMMARY_KEYS
from cmhash.io import atomic_path

#: The hue of every figure: one colour per method and protocol.
METHOD_PROTOCOL = "method / protocol"
#: The diagnostics drawn over epochs: the canonical names shared by every method, in their
#: documented order, without the true noise rate (the cell's rate, named in the legend).
DIAGNOSTICS = tuple(name.removeprefix(diagnostics.PREFIX) for name in diagnostics.NAMES
                    if name != diagnostics.NOISE_RATE_TRUE)


def save_figure(figure: plt.Figure, paths: Iterable[str | Path], dpi: int = 150) -> None:
    """Write ``figure`` to each path (format from the suffix: .pdf, .png) atomically, then close it."""
    try:
        for path in paths:
            with atomic_path(path) as tmp:
                figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix[1:])
    finally:
        plt.close(figure)


def message_figure(message: str, paths: Iterable[str | Path]) -> None:
    """A figure holding only ``message``: written where there is nothing to plot."""
    figure, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save_figure(figure, paths)


def pick_bits(available: Iterable[int], wanted: int | None) -> int:
    """``wanted`` if that bit length was run, else the largest one run."""
    available = {int(b) for b in available}
    return int(wanted) if wanted is not None and int(wanted) in available else max(available)


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper")


def _with_labels(data: pd.DataFrame) -> pd.DataFrame:
    """Add the legend and panel columns shared by the figures."""
    data = data.copy()
    data[METHOD_PROTOCOL] = data["method"] + " / " + data["protocol"]
    data["noise"] = data["noise_model"] + " " + data["rate"].map("{:g}".format)
    return data


def _semantics(data: pd.DataFrame, hue: str, style: str | None = None) -> dict:
    """Colour (and dash) keyword arguments with sorted levels, so that every figure gives a
    method, protocol or noise the same place in its legend."""
    kwargs = {"hue": hue, "hue_order": sorted(data[hue].unique())}
    if style is not None:
        kwargs.update(style=style, style_order=sorted(data[style].unique()))
    return kwargs


def _wrap(data: pd.DataFrame, column: str = "panel", most: int = 3) -> int:
    return max(1, min(most, data[column].nunique()))


def map_vs_noise(results: pd.DataFrame, pdf: str | Path, png: str | Path, bits: int | None = None) -> pd.DataFrame:
    """mAP against noise rate, a line per method and protocol (band = spread over seeds), a panel
    per dataset and direction, at ``bits`` (default: the largest bit length run)."""
    bits = pick_bits(results["bits"], bits)
    data = _with_labels(results[results["bits"] == bits])
    data["panel"] = data["dataset"] + " " + data["direction"]
    _theme()
    grid = sns.relplot(data=data, x="rate", y="map", col="panel", **_semantics(data, METHOD_PROTOCOL),
                       kind="line", marker="o", errorbar="sd", height=3.2, aspect=1.1, col_wrap=_wrap(data))
    grid.set_axis_labels("training-label noise rate", f"mAP@all ({bits} bits)")
    grid.set_titles("{col_name}")
    save_figure(grid.figure, (pdf, png))
    return data


def _curve_panels(data: pd.DataFrame) -> pd.DataFrame:
    """One panel per dataset, direction and noise (model and rate), in that order."""
    data = _with_labels(data).sort_values(["dataset", "direction", "noise_model", "rate"], kind="stable")
    data["panel"] = data["dataset"] + " " + data["direction"] + ", noise " + data["noise"]
    return data


def precision_at_n(curves: pd.DataFrame, pdf: str | Path, png: str | Path, bits: int | None = None) -> pd.DataFrame:
    """Precision of the top N retrieved against N (:func:`cmhash.report.collect.load_curves`), a
    colour per method, a dash per protocol (band = spread over seeds), a panel per dataset,
    direction and noise, at ``bits`` (default: the largest bit length run)."""
    bits = pick_bits(curves["bits"], bits)
    data = _curve_panels(curves[curves["bits"] == bits])
    _theme()
    grid = sns.relplot(data=data, x="n", y="precision", col="panel", **_semantics(data, "method", "protocol"),
                       kind="line", errorbar="sd", height=3.0, aspect=1.1, col_wrap=_wrap(data))
    grid.set_axis_labels("N (items retrieved)", f"precision@N ({bits} bits)")
    grid.set_titles("{col_name}")
    save_figure(grid.figure, (pdf, png))
    return data


def pr_curves(curves: pd.DataFrame, pdf: str | Path, png: str | Path, bits: int | None = None) -> pd.DataFrame:
    """Precision against recall over Hamming radii (:func:`cmhash.report.collect.load_curves`),
    a colour per method, a dash per protocol, a panel per dataset, direction and noise, at
    ``bits``. Seeds are averaged radius by radius (precision and recall alike), so each line
    runs outwards from the smallest radius at which a query retrieves a relevant item."""
    bits = pick_bits(curves["bits"], bits)
    keys = [*SUMMARY_KEYS, "radius"]
    mean = curves[curves["bits"] == bits].groupby(keys, as_index=False)[["precision", "recall"]].mean()
    data = _curve_panels(mean).sort_values(["panel", "method", "protocol", "radius"], kind="stable")
    _theme()
    grid = sns.relplot(data=data, x="recall", y="precision", col="panel", **_semantics(data, "method", "protocol"),
                       kind="line", estimator=None, sort=False, marker=".", height=3.0, aspect=1.1,
                       col_wrap=_wrap(data))
    grid.set_axis_labels("recall", f"precision ({bits} bits)")
    grid.set_titles("{col_name}")
    grid.set(xlim=(0, 1.02), ylim=(0, 1.02))
    save_figure(grid.figure, (pdf, png))
    return data


def selection_diagnostics(history: pd.DataFrame, pdf: str | Path, png: str | Path,
                          bits: int | None = None) -> pd.DataFrame:
    """Noise-detection diagnostics over epochs (:func:`cmhash.report.collect.load_diagnostics`):
    a panel per canonical diagnostic (``DIAGNOSTICS``; per dataset when there are several), a
    colour per method and protocol, a dash per noise model and rate (band = spread over seeds),
    at ``bits``. Writes a figure saying so when no method logs any."""
    data = history[history["diagnostic"].isin(DIAGNOSTICS)]
    if data.empty:
        message_figure("No method of this grid logs sample-selection diagnostics.", (pdf, png))
        return data
    bits = pick_bits(data["bits"], bits)
    data = _with_labels(data[data["bits"] == bits])
    rank = data["diagnostic"].map({name: i for i, name in enumerate(DIAGNOSTICS)})
    data = data.assign(rank=rank).sort_values(["dataset", "rank"], kind="stable").drop(columns="rank")
    several = data["dataset"].nunique() > 1
    data["panel"] = (data["dataset"] + ": " if several else "") + data["diagnostic"]
    _theme()
    grid = sns.relplot(data=data, x="epoch", y="value", col="panel", **_semantics(data, METHOD_PROTOCOL, "noise"),
                       kind="line", errorbar="sd", height=2.6, aspect=1.2, col_wrap=_wrap(data, most=4),
                       facet_kws={"sharey": False})
    grid.set_axis_labels("epoch", "")
    grid.set_titles("{col_name}")
    grid.figure.suptitle(f"sample selection against the true corruption ({bits} bits)", y=1.02)
    save_figure(grid.figure, (pdf, png))
    return data


def delta_to_published(delta: pd.DataFrame, pdf: str | Path, png: str | Path) -> pd.DataFrame:
    """Ours minus published mAP@all (:func:`cmhash.report.published.delta_table`), a bar per bit
    length and method/protocol, a panel per dataset, direction and noise rate; only cells with
    a published counterpart. Writes a figure saying so when no cell has one."""
    data = delta.dropna(subset=["delta"])
    if data.empty:
        message_figure("No cell of this grid has a published counterpart:\nnothing to compare.", (pdf, png))
        return data
    data = _with_labels(data).sort_values(["dataset", "direction", "rate", "bits"], kind="stable")
    data["panel"] = data["dataset"] + " " + data["direction"] + ", noise " + data["rate"].map("{:g}".format)
    order = [str(b) for b in sorted(data["bits"].astype(int).unique())]
    data["bits"] = data["bits"].astype(int).astype(str)
    _theme()
    grid = sns.catplot(data=data, x="bits", y="delta", order=order, col="panel", kind="bar",
                       **_semantics(data, METHOD_PROTOCOL),
                       errorbar=None, height=3.0, aspect=1.1, col_wrap=_wrap(data))
    grid.refline(y=0, color="black", linewidth=0.8)
    grid.set_axis_labels("bits", r"mAP@all: ours $-$ published")
    grid.set_titles("{col_name}")
    save_figure(grid.figure, (pdf, png))
    return data
