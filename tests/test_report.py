"""LaTeX tables in the papers' layout, the runs' curves and diagnostics, and the figures."""
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from cmhash.config import Cell
from cmhash.report import FIGURES, write_report
from cmhash.report.collect import load_curves, load_diagnostics
from cmhash.report.figures import (
    delta_to_published,
    map_vs_noise,
    pick_bits,
    pr_curves,
    precision_at_n,
    selection_diagnostics,
)
from cmhash.report.published import MISSING, delta_latex, delta_table, load_published
from cmhash.report.tables import latex_document, latex_table
from tests.helpers import REPO


def results_fixture():
    rows = []
    for method, base in (("baseline", 0.60), ("nrch", 0.70), ("scbch", 0.65)):
        for rate in (0.2, 0.5):
            for bits in (16, 64):
                for seed in (0, 1):
                    rows.append(dict(dataset="mirflickr25k", direction="i2t", method=method, protocol="paper",
                                     noise_model="nrch", rate=rate, bits=bits, seed=seed,
                                     map=base - rate / 10 + bits / 1000 + seed * 0.002))
    return pd.DataFrame(rows)


def test_table_layout_best_bold_second_underlined():
    tex = latex_table(results_fixture())
    assert tex.count(r"\begin{tabular}") == 1 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{2}{c}{noise 0.2}" in tex and r"\multicolumn{2}{c}{noise 0.5}" in tex
    rows = {line.split(" & ")[0]: line for line in tex.splitlines() if " & paper & " in line}
    # nrch is best in every column, scbch second, baseline plain
    assert rows["nrch"].count(r"\textbf{") == 4
    assert rows["scbch"].count(r"\underline{") == 4
    assert r"\textbf" not in rows["baseline"] and r"\underline" not in rows["baseline"]
    # mean over the two seeds and their spread: 0.70 - 0.02 + 0.016 + 0.001 = 0.697
    assert r"\textbf{0.697}" in rows["nrch"] and r"$\pm$0.001" in rows["nrch"]


def test_structure_is_balanced():
    doc = latex_document(latex_table(results_fixture()))
    assert doc.count(r"\begin{") == doc.count(r"\end{")
    for line in doc.splitlines():
        if line.endswith(r"\\") and " & " in line and "multirow" not in line:
            assert line.count(" & ") == 2 + 4 - 1  # method, protocol, 2 rates x 2 bits
    assert len(re.findall(r"\\cmidrule", doc)) == 2


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine (pdflatex) installed: structural check only")
def test_tables_compile_with_pdflatex(tmp_path):
    published = load_published(REPO / "config" / "published_results.csv")
    delta = delta_table(results_fixture(), published, {"mirflickr25k": "mirflickr25k"})
    (tmp_path / "t.tex").write_text(latex_document(latex_table(results_fixture()) + "\n" + delta_latex(delta)))
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_figure_written(tmp_path):
    data = map_vs_noise(results_fixture(), tmp_path / "f.pdf", tmp_path / "f.png", bits=64)
    assert_figure(tmp_path / "f.pdf", tmp_path / "f.png")
    assert set(data.bits) == {64} and len(data) == len(results_fixture()) / 2


def test_delta_to_published_numbers():
    published = load_published(REPO / "config" / "published_results.csv")
    results = results_fixture()
    delta = delta_table(results, published, {"mirflickr25k": "mirflickr25k"})
    nrch = delta[(delta.method == "nrch") & (delta.rate == 0.2) & (delta.bits == 64)].iloc[0]
    row = published[(published.method == "NRCH") & (published.dataset == "mirflickr25k") & (published.direction == "i2t")
                    & (published.noise == 0.2) & (published.bits == 64)].iloc[0]
    assert nrch.published == row["map"] and abs(nrch.delta - (nrch.ours - row["map"])) < 1e-12
    assert "NRCH" in nrch.source
    # no SCBCH row in the published table: kept and marked, not dropped
    scbch = delta[delta.method == "scbch"]
    assert len(scbch) == 4 and scbch.published.isna().all() and (scbch.source == MISSING).all()
    # a dataset without a published counterpart (the demo's) marks every cell
    demo = delta_table(results.assign(dataset="embedded"), published, {"embedded": "embedded"})
    assert demo.published.isna().all()
    assert delta_latex(demo).count("& -- & --") == len(demo)


# -- figures from the runs' curves and diagnostics ------------------------------------------
NS = [1, 2, 5, 10]


def pn_value(cell: Cell, direction: str, n: int) -> float:
    return 0.9 - n / 100 - cell.rate / 10 + cell.seed / 100 + (direction == "t2i") / 50 + (cell.method == "nrch") / 20


def pr_value(cell: Cell, radius: int) -> tuple[float, float]:
    """(precision, recall) at ``radius``; radius 0 is a placeholder no query covers."""
    if radius == 0:
        return 0.0, 0.0
    return 1 - radius / (2 * cell.bits) + cell.seed / 100, radius / cell.bits


def diag_value(cell: Cell, epoch: int) -> float:
    return 0.5 + epoch / 10 + cell.seed / 100 - cell.rate / 10


def write_runs(root, methods=("baseline", "nrch")) -> list:
    """A run folder per cell holding what the train and evaluate stages write: config.json,
    metrics.json, curves.npz (i2t, t2i) and history.csv (3 epochs and the final evaluation row;
    only nrch logs selection diagnostics, canonical and method-specific)."""
    files = []
    for method in methods:
        for rate in (0.2, 0.5):
            for bits in (16, 64):
                for seed in (0, 1):
                    for protocol in ("paper", "sound"):
                        cell = Cell("mirflickr25k", method, "nrch", rate, bits, seed, protocol)
                        run = root / cell.run_dir
                        run.mkdir(parents=True)
                        (run / "config.json").write_text(json.dumps({"cell": cell.as_dict()}))
                        curves, directions = {}, {}
                        for direction in ("i2t", "t2i"):
                            curves[f"{direction}/precision_at_n/n"] = np.array(NS)
                            curves[f"{direction}/precision_at_n/precision"] = np.array(
                                [pn_value(cell, direction, n) for n in NS])
                            radius = np.arange(bits + 1)
                            pr = np.array([pr_value(cell, r) for r in radius])
                            curves.update({f"{direction}/pr/radius": radius, f"{direction}/pr/precision": pr[:, 0],
                                           f"{direction}/pr/recall": pr[:, 1],
                                           f"{direction}/pr/n_queries": (radius > 0) * 30})
                            directions[direction] = {"map": pn_value(cell, direction, 50), "precision_at_n": {"1": 0.9}}
                        np.savez(run / "curves.npz", **curves)
                        (run / "metrics.json").write_text(json.dumps({"directions": directions}))
                        history = pd.DataFrame({"epoch": [0, 1, 2, 3], "loss/total": [1.0, 0.8, 0.7, np.nan]})
                        if method == "nrch":
                            value = [diag_value(cell, e) for e in range(3)] + [np.nan]
                            history["select/precision"] = value
                            history["select/auc"] = value
                            history["select/noise_rate_true"] = [rate] * 3 + [np.nan]
                            history["select/gmm_mean_clean"] = value
                        history.to_csv(run / "history.csv", index=False)
                        files.append(run / "metrics.json")
    return files


def assert_figure(pdf, png):
    assert open(png, "rb").read(4) == b"\x89PNG" and open(pdf, "rb").read(4) == b"%PDF"


def test_pick_bits_falls_back_to_the_largest_run():
    assert pick_bits([16, 64, 32], 32) == 32
    assert pick_bits([16, 64], 128) == 64 and pick_bits([16, 64], None) == 64


def test_curves_are_read_from_every_run(tmp_path):
    files = write_runs(tmp_path)
    pn, pr = load_curves(files)
    assert len(pn) == len(files) * 2 * len(NS)
    row = pn[(pn.method == "nrch") & (pn.rate == 0.5) & (pn.bits == 64) & (pn.seed == 1)
             & (pn.protocol == "sound") & (pn.direction == "t2i") & (pn.n == 5)]
    assert row.precision.tolist() == pytest.approx([pn_value(Cell("mirflickr25k", "nrch", "nrch", 0.5, 64, 1, "sound"),
                                                             "t2i", 5)])
    # radius 0 (no query averaged) is dropped; every other radius kept
    assert (pr.radius > 0).all()
    assert len(pr) == sum(2 * b for b in pr.drop_duplicates(["method", "rate", "bits", "seed", "protocol"]).bits)
    cell = Cell("mirflickr25k", "baseline", "nrch", 0.2, 16, 0, "paper")
    got = pr[(pr.method == "baseline") & (pr.rate == 0.2) & (pr.bits == 16) & (pr.seed == 0) & (pr.protocol == "paper")
             & (pr.direction == "i2t") & (pr.radius == 4)]
    assert (got.precision.item(), got.recall.item()) == pytest.approx(pr_value(cell, 4))


def test_diagnostics_are_read_from_the_histories(tmp_path):
    history = load_diagnostics(write_runs(tmp_path))
    assert set(history.method) == {"nrch"}  # the baseline logs none
    assert set(history.diagnostic) == {"precision", "auc", "noise_rate_true", "gmm_mean_clean"}
    assert set(history.epoch) == {0, 1, 2}  # the final evaluation row has no diagnostics
    row = history[(history.rate == 0.5) & (history.bits == 16) & (history.seed == 1) & (history.protocol == "paper")
                  & (history.diagnostic == "auc") & (history.epoch == 2)]
    assert row.value.item() == pytest.approx(diag_value(Cell("mirflickr25k", "nrch", "nrch", 0.5, 16, 1, "paper"), 2))
    assert load_diagnostics(write_runs(tmp_path / "b", methods=("baseline",))).empty


def test_precision_at_n_figure(tmp_path):
    pn, _ = load_curves(write_runs(tmp_path))
    data = precision_at_n(pn, tmp_path / "pn.pdf", tmp_path / "pn.png", bits=16)
    assert_figure(tmp_path / "pn.pdf", tmp_path / "pn.png")
    assert set(data.bits) == {16} and len(data) == len(pn) / 2
    # a panel per dataset, direction and noise; every method and protocol in each
    assert sorted(data.panel.unique()) == ["mirflickr25k i2t, noise nrch 0.2", "mirflickr25k i2t, noise nrch 0.5",
                                           "mirflickr25k t2i, noise nrch 0.2", "mirflickr25k t2i, noise nrch 0.5"]
    assert data.groupby("panel")[["method", "protocol"]].nunique().eq(2).all().all()


def test_pr_figure_averages_seeds_radius_by_radius(tmp_path):
    _, pr = load_curves(write_runs(tmp_path))
    data = pr_curves(pr, tmp_path / "pr.pdf", tmp_path / "pr.png")  # default: the largest bits run
    assert_figure(tmp_path / "pr.pdf", tmp_path / "pr.png")
    assert set(data.bits) == {64} and "seed" not in data
    line = data[(data.method == "nrch") & (data.protocol == "sound") & (data.panel == "mirflickr25k i2t, noise nrch 0.5")]
    assert line.radius.tolist() == list(range(1, 65))  # drawn from radius 1 outwards
    seeds = [pr_value(Cell("mirflickr25k", "nrch", "nrch", 0.5, 64, s, "sound"), 10) for s in (0, 1)]
    at10 = line[line.radius == 10]
    assert at10.precision.item() == pytest.approx(np.mean([p for p, _ in seeds]))
    assert at10.recall.item() == pytest.approx(10 / 64)


def test_diagnostics_figure_draws_the_canonical_diagnostics(tmp_path):
    history = load_diagnostics(write_runs(tmp_path))
    data = selection_diagnostics(history, tmp_path / "d.pdf", tmp_path / "d.png", bits=64)
    assert_figure(tmp_path / "d.pdf", tmp_path / "d.png")
    # method-specific extras and the true rate are not panels; the rest in the documented order
    assert data.panel.unique().tolist() == ["precision", "auc"]
    assert set(data.bits) == {64} and set(data["method / protocol"]) == {"nrch / paper", "nrch / sound"}
    assert set(data.noise) == {"nrch 0.2", "nrch 0.5"}


def test_diagnostics_figure_without_any_diagnostic_says_so(tmp_path):
    history = load_diagnostics(write_runs(tmp_path, methods=("baseline",)))
    data = selection_diagnostics(history, tmp_path / "d.pdf", tmp_path / "d.png")
    assert data.empty
    assert_figure(tmp_path / "d.pdf", tmp_path / "d.png")


def test_delta_figure(tmp_path):
    published = load_published(REPO / "config" / "published_results.csv")
    delta = delta_table(results_fixture(), published, {"mirflickr25k": "mirflickr25k"})
    data = delta_to_published(delta, tmp_path / "x.pdf", tmp_path / "x.png")
    assert_figure(tmp_path / "x.pdf", tmp_path / "x.png")
    # only cells with a published counterpart (no SCBCH row is published), a bar per bits
    assert set(data.method) == {"baseline", "nrch"} and data.delta.notna().all()
    assert len(data) == delta.delta.notna().sum() and set(data.bits) == {"16", "64"}
    # nothing to compare (the demo's data set): still a figure
    empty = delta_table(results_fixture().assign(dataset="embedded"), published, {"embedded": "embedded"})
    assert delta_to_published(empty, tmp_path / "e.pdf", tmp_path / "e.png").empty
    assert_figure(tmp_path / "e.pdf", tmp_path / "e.png")


def test_write_report_writes_every_figure(tmp_path):
    out = tmp_path / "report"
    results = write_report(write_runs(tmp_path), out / "results.csv", out / "tables.tex", out / "map_vs_noise.pdf",
                           out / "map_vs_noise.png", figure_bits=16,
                           published_csv=REPO / "config" / "published_results.csv",
                           dataset_sources={"mirflickr25k": "mirflickr25k"},
                           delta_csv=out / "delta.csv", delta_tex=out / "delta.tex",
                           figures={"pr_curves": (tmp_path / "pr.pdf", tmp_path / "pr.png")})
    assert len(results) == 2 * 32
    for name in FIGURES:
        pdf, png = (tmp_path / "pr.pdf", tmp_path / "pr.png") if name == "pr_curves" else \
            (out / f"{name}.pdf", out / f"{name}.png")
        assert_figure(pdf, png)
    assert not (out / "pr_curves.png").exists()
    assert (out / "delta.csv").is_file() and r"\toprule" in (out / "delta.tex").read_text()
