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
from cmhash.report.paper_table import (
    COLUMNS,
    NOT_RUN,
    OURS_ONLY,
    RUN,
    paper_table_latex,
    paper_tables,
    paper_tables_frame,
    paper_tables_latex,
    without_table,
)
from cmhash.report.published import (
    MISSING,
    NO_PUBLIC_CODE,
    NOT_IMPLEMENTED,
    NOT_IN_GRID,
    NOT_RUNNABLE,
    PUBLISHED_ELSEWHERE,
    PUBLISHED_METHOD,
    delta_latex,
    delta_table,
    load_published,
    not_run_reason,
    published_name,
)
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
    # the baseline is ours, not DCMH (dcmh is): no published figure
    assert delta[delta.method == "baseline"].published.isna().all()
    dcmh = delta_table(results.replace({"method": {"baseline": "dcmh"}}), published, {"mirflickr25k": "mirflickr25k"})
    assert dcmh[dcmh.method == "dcmh"].source.str.contains("NRCH").all()
    # the label-free rows (one run fills every rate) and DCHUC: each rate against its own published figure
    for method, name, label_free in (("ucch", "UCCH", True), ("djsrh", "DJSRH", True), ("dgcpn", "DGCPN", True),
                                     ("dchuc", "DCHUC", False)):
        renamed = results.replace({"method": {"baseline": method}})
        renamed["label_free"] = label_free & renamed["method"].eq(method)
        rows = delta_table(renamed, published, {"mirflickr25k": "mirflickr25k"})
        rows = rows[rows.method == method]
        assert len(rows) == 4 and rows.published.notna().all(), method
        for r in rows.itertuples():
            want = published[(published.method == name) & (published.dataset == "mirflickr25k")
                              & (published.direction == "i2t") & (published.noise == r.rate)
                              & (published.bits == r.bits)]["map"]
            assert r.published == want.iloc[0], (method, r.rate, r.bits)
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
    # only cells with a published counterpart (no SCBCH row is published, the baseline is not DCMH), a bar per bits
    assert set(data.method) == {"nrch"} and data.delta.notna().all()
    assert len(data) == delta.delta.notna().sum() and set(data.bits) == {"16", "64"}
    # nothing to compare (the demo's data set): still a figure
    empty = delta_table(results_fixture().assign(dataset="embedded"), published, {"embedded": "embedded"})
    assert delta_to_published(empty, tmp_path / "e.pdf", tmp_path / "e.png").empty
    assert_figure(tmp_path / "e.pdf", tmp_path / "e.png")


def test_write_report_writes_every_figure(tmp_path):
    out = tmp_path / "report"
    results = write_report(write_runs(tmp_path, methods=("dcmh", "nrch")), out / "results.csv", out / "tables.tex",
                           out / "map_vs_noise.pdf", out / "map_vs_noise.png", figure_bits=16,
                           published_csv=REPO / "config" / "published_results.csv",
                           dataset_sources={"mirflickr25k": "mirflickr25k"},
                           delta_csv=out / "delta.csv", delta_tex=out / "delta.tex",
                           figures={"pr_curves": (tmp_path / "pr.pdf", tmp_path / "pr.png")},
                           paper_csv=out / "paper.csv", paper_tex=out / "paper.tex")
    assert len(results) == 2 * 32
    for name in FIGURES:
        pdf, png = (tmp_path / "pr.pdf", tmp_path / "pr.png") if name == "pr_curves" else \
            (out / f"{name}.pdf", out / f"{name}.png")
        assert_figure(pdf, png)
    assert not (out / "pr_curves.png").exists()
    assert (out / "delta.csv").is_file() and r"\toprule" in (out / "delta.tex").read_text()

    # the paper table: two of the published table's methods run, its other ten rows published-only
    paper = pd.read_csv(out / "paper.csv")
    status = paper.groupby("row", sort=False)["status"].first()
    assert len(status) == 12 and set(status[status == RUN].index) == {"DCMH", "NRCH"}
    assert (status == NOT_RUN).sum() == 10
    cell = paper[(paper.row == "NRCH") & (paper.direction == "t2i") & (paper.rate == 0.5) & (paper.bits == 64)].iloc[0]
    assert cell.sound_n == 2 and cell.sound_mean == pytest.approx(np.mean(
        [pn_value(Cell("mirflickr25k", "nrch", "nrch", 0.5, 64, s, "sound"), "t2i", 50) for s in (0, 1)]))
    assert cell.sound_delta == pytest.approx(cell.sound_mean - cell.published)
    tex = (out / "paper.tex").read_text()
    assert tex.count(r"\begin{longtable}") == 1 and r"\usepackage{longtable}" in tex and r"\caption{" in tex


# -- the published table whole, ours beside it ---------------------------------------------------
PUBLISHED = REPO / "config" / "published_results.csv"


def test_every_published_method_maps_or_says_why_not():
    """One mapping, checked against the published table's names: a typo on either side would
    leave a published row 'not run here' and our runs in a row of their own."""
    from cmhash.methods import METHODS

    names = set(load_published(PUBLISHED)["method"])
    mapped = set(PUBLISHED_METHOD.values())
    assert set(PUBLISHED_METHOD) <= set(METHODS)  # our side: registered methods
    assert mapped <= names | PUBLISHED_ELSEWHERE  # their side: the published names
    assert names == (mapped & names) | set(NOT_RUNNABLE) and not mapped & set(NOT_RUNNABLE)
    assert {published_name(m) for m in ("dcmh", "dchuc", "ucch", "djsrh", "dgcpn", "nrch")} == \
        {"DCMH", "DCHUC", "UCCH", "DJSRH", "DGCPN", "NRCH"}
    assert not_run_reason("DCHUC") == NOT_IN_GRID and not_run_reason("SOMETHING_NEW") == NOT_IMPLEMENTED
    assert published_name("baseline") is None and published_name("scbch_code_weights") is None
    assert {n for n, r in NOT_RUNNABLE.items() if r == NO_PUBLIC_CODE} == {"ADAH", "CPAH", "PIP", "CMMQ", "MIAN", "LtCMH"}


def test_readme_lists_the_rows_cmhash_cannot_run():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Rows of the published table cmhash cannot run"):]
    section = section[:section.index("\n#")]
    for name, reason in NOT_RUNNABLE.items():
        assert re.search(rf"\b{re.escape(name)}\b.*{re.escape(reason)}", section), name


def grid_results(methods=("dcmh", "ucch"), dataset="mirflickr25k", noise_model="nrch") -> pd.DataFrame:
    """A tiny grid's results frame: ``methods`` at two rates, two bit lengths, two seeds, both
    protocols and directions, plus a rate and a bit length the published table does not have."""
    rows = []
    for k, method in enumerate(methods):
        for protocol in ("paper", "sound"):
            for rate in (0.0, 0.2, 0.8):
                for bits in (8, 16, 64):
                    for seed in (0, 1):
                        for direction in ("i2t", "t2i", "fused"):
                            value = 0.5 + k / 10 + rate / 100 + bits / 1000 + seed / 100 + (protocol == "sound") / 50
                            rows.append({"dataset": dataset, "direction": direction, "method": method,
                                         "protocol": protocol, "noise_model": noise_model, "rate": rate, "bits": bits,
                                         "seed": seed, "map": value})
    return pd.DataFrame(rows)


def test_two_methods_give_a_table_whose_other_ten_rows_are_published_only():
    published = load_published(PUBLISHED)
    [table] = paper_tables(grid_results(), published, {"mirflickr25k": "mirflickr25k"})
    frame = table.frame
    assert list(frame.columns) == COLUMNS and table.comparable and table.layout == "mirflickr25k"
    mir = published[published.dataset == "mirflickr25k"]
    # every published cell of the MIRFlickr table, in the paper's row order, and nothing else
    assert list(dict.fromkeys(frame.row)) == list(dict.fromkeys(mir.method))
    assert len(frame) == len(mir) == 12 * 2 * 3 * 4
    merged = frame.merge(mir.rename(columns={"method": "row", "noise": "rate", "map": "pub"}),
                         on=["row", "direction", "rate", "bits"])
    assert len(merged) == len(frame) and (merged.published == merged.pub).all()
    rows = frame.groupby("row", sort=False)[["status", "reason", "method"]].first()
    assert set(rows[rows.status == RUN].index) == {"DCMH", "UCCH"}
    assert rows.loc["DCMH", "method"] == "dcmh" and rows.loc["UCCH", "method"] == "ucch"
    others = rows[rows.status == NOT_RUN]
    assert len(others) == 10
    assert others.reason.to_dict() == {"DJSRH": NOT_IN_GRID, "DGCPN": NOT_IN_GRID, "ADAH": NO_PUBLIC_CODE,
                                       "CPAH": NO_PUBLIC_CODE, "PIP": NO_PUBLIC_CODE, "CMMQ": NO_PUBLIC_CODE,
                                       "DCHUC": NOT_IN_GRID, "MIAN": NO_PUBLIC_CODE, "LtCMH": NO_PUBLIC_CODE,
                                       "NRCH": NOT_IN_GRID}
    assert frame[frame.status == NOT_RUN][["paper_n", "sound_n"]].eq(0).all().all()
    assert frame[frame.status == NOT_RUN][["paper_mean", "sound_delta"]].isna().all().all()
    # ours where run: mean, std and n over the seeds, and ours minus published, per protocol
    cell = frame[(frame.row == "UCCH") & (frame.direction == "i2t") & (frame.rate == 0.2) & (frame.bits == 16)].iloc[0]
    expected = [0.6 + 0.002 + 0.016 + s / 100 + 0.02 for s in (0, 1)]
    assert cell.sound_mean == pytest.approx(np.mean(expected)) and cell.sound_std == pytest.approx(np.std(expected, ddof=1))
    assert cell.sound_n == 2 and cell.paper_n == 2
    assert cell.sound_delta == pytest.approx(cell.sound_mean - cell.published)
    assert cell.paper_delta == pytest.approx(cell.paper_mean - cell.published)
    # published cells the grid did not run (noise 0.5, 32 and 128 bits): the published figure alone
    unrun = frame[(frame.row == "UCCH") & ((frame.rate == 0.5) | frame.bits.isin([32, 128]))]
    assert unrun.published.notna().all() and (unrun.paper_n == 0).all() and unrun.paper_delta.isna().all()
    assert (frame.paper_n > 0).sum() == 2 * 2 * 2 * 2  # 2 methods x 2 directions x 2 rates x 2 bits


def test_the_baseline_and_a_variant_are_rows_of_their_own():
    published = load_published(PUBLISHED)
    results = grid_results(methods=("nrch", "baseline", "nrch_light"))
    [table] = paper_tables(results, published, {"mirflickr25k": "mirflickr25k"})
    rows = table.frame.groupby("row", sort=False)[["status", "reason"]].first()
    assert list(rows.index[-2:]) == ["baseline", "nrch_light"]  # after the published rows
    assert (rows.loc[["baseline", "nrch_light"], "status"] == OURS_ONLY).all()
    assert (rows.loc[["baseline", "nrch_light"], "reason"] == MISSING).all()
    assert rows.loc["DCMH", "status"] == NOT_RUN and rows.loc["NRCH", "status"] == RUN
    assert table.frame[table.frame.row == "baseline"].published.isna().all()
    tex = paper_table_latex(table)
    assert "nrch\\_light & ours, paper (n=2)" in tex and "baseline & published" not in tex


def test_a_method_run_only_under_another_noise_model_says_so():
    published = load_published(PUBLISHED)
    results = pd.concat([grid_results(methods=("nrch",)), grid_results(methods=("dcmh",), noise_model="sym")])
    [table] = paper_tables(results, published, {"mirflickr25k": "mirflickr25k"})
    dcmh = table.frame[table.frame.row == "DCMH"]
    assert (dcmh.status == NOT_RUN).all() and "only under noise model sym" in dcmh.reason.iloc[0]
    assert r"DCMH$^{*}$" in paper_table_latex(table)


def test_the_demo_borrows_mirflickr_and_is_marked_not_comparable():
    published = load_published(PUBLISHED)
    results = grid_results(methods=("nrch", "baseline"), dataset="embedded")
    [table] = paper_tables(results, published, {"embedded": "embedded"})
    assert table.layout == "mirflickr25k" and not table.comparable and "NOT COMPARABLE" in table.note
    frame = table.frame
    assert (frame.note == table.note).all() and not frame.comparable.any()
    assert frame[frame.row == "NRCH"].paper_n.max() == 2  # ours shown beside the borrowed figures
    assert frame[["paper_delta", "sound_delta"]].isna().all().all()  # but never subtracted
    tex = paper_table_latex(table)
    assert r"\caption{\textbf{NOT COMPARABLE: embedded (source embedded)" in tex and "MIRFlickr-25K layout" in tex
    assert r"$\Delta$" not in tex.split(r"\endlastfoot")[1]


def test_a_dataset_no_published_table_holds_gets_a_sentence_not_a_table():
    published = load_published(PUBLISHED)
    results = pd.concat([grid_results(dataset="wiki"), grid_results(dataset="mir")])
    sources = {"wiki": "wikipedia", "mir": "mirflickr25k_ucch"}
    tables = paper_tables(results, published, sources)
    assert [t.dataset for t in tables] == ["mir"]
    [sentence] = without_table(results, tables, sources)
    assert "wiki" in sentence and "wikipedia" in sentence
    assert sentence.replace("_", "\\_") in paper_tables_latex(tables, [sentence])
    assert len(paper_tables_frame(tables)) == 12 * 24
    assert list(paper_tables_frame([]).columns) == COLUMNS


def paper_document() -> str:
    published = load_published(PUBLISHED)
    results = pd.concat([grid_results(), grid_results(methods=("nrch", "baseline"), dataset="embedded")])
    tables = paper_tables(results, published, {"mirflickr25k": "mirflickr25k", "embedded": "embedded"})
    return latex_document(paper_tables_latex(tables))


def test_paper_tables_structure():
    doc = paper_document()
    for env in ("document", "longtable"):
        assert doc.count(rf"\begin{{{env}}}") == doc.count(rf"\end{{{env}}}")
    assert doc.count(r"\begin{longtable}") == doc.count(r"\caption{") == 2
    assert doc.count(r"\begingroup") == doc.count(r"\endgroup") == 2
    for package in ("booktabs", "multirow", "longtable"):
        assert rf"\usepackage{{{package}}}" in doc
    assert doc.count(r"\toprule") == doc.count(r"\bottomrule") * 2 == 4  # the header repeats on each page
    body = [line for line in doc.splitlines() if line.endswith(r"\\") and not line.startswith((r"\multicolumn{14}", r"\caption"))]
    assert body and all(line.count(" & ") == 2 + 12 - 1 for line in body if not line.startswith("Method"))
    assert all(line.count("{") == line.count("}") for line in doc.splitlines())
    assert doc.count(r"\textit{Image $\rightarrow$ Text}") == doc.count(r"\textit{Text $\rightarrow$ Image}") == 2


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine (pdflatex) installed: structural check only")
def test_paper_tables_compile_with_pdflatex(tmp_path):
    (tmp_path / "p.tex").write_text(paper_document())
    for _ in range(2):  # longtable settles its column widths on the second pass
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "p.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "p.pdf").stat().st_size > 1000


def test_the_demo_report_holds_mirflickrs_table_marked_not_comparable(tmp_path):
    """config/demo.yaml's grid (embedded data: family None) through write_report."""
    from cmhash.config import cells, load_and_check

    cfg = load_and_check(REPO / "config" / "demo.yaml")
    files = []
    for cell in cells(cfg):
        run = tmp_path / cell.run_dir
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"cell": cell.as_dict()}))
        directions = ("fused",) if cell.method == "dcgmh" else ("i2t", "t2i")
        (run / "metrics.json").write_text(json.dumps({"directions": {d: {"map": 0.6} for d in directions}}))
        np.savez(run / "curves.npz", **{f"{d}/{k}": np.arange(3) for d in directions
                                        for k in ("precision_at_n/n", "precision_at_n/precision", "pr/radius",
                                                  "pr/precision", "pr/recall", "pr/n_queries")})
        pd.DataFrame({"epoch": [0]}).to_csv(run / "history.csv", index=False)
        files.append(run / "metrics.json")
    out = tmp_path / "report"
    write_report(files, out / "results.csv", out / "tables.tex", out / "m.pdf", out / "m.png",
                 published_csv=PUBLISHED, dataset_sources={n: d["source"] for n, d in cfg["datasets"].items()},
                 paper_csv=out / "paper.csv", paper_tex=out / "paper.tex")
    paper = pd.read_csv(out / "paper.csv")
    assert set(paper.dataset) == {"embedded"} and set(paper.layout) == {"mirflickr25k"} and not paper.comparable.any()
    status = paper.groupby("row", sort=False)["status"].first()
    assert status.to_dict() == {**{n: NOT_RUN for n in dict.fromkeys(load_published(PUBLISHED).method) if n != "NRCH"},
                                "NRCH": RUN, "baseline": OURS_ONLY, "scbch": OURS_ONLY}
    assert paper[(paper.row == "NRCH") & (paper.bits == 64)].paper_n.eq(1).all()
    assert paper[["paper_delta", "sound_delta"]].isna().all().all()
    tex = (out / "paper.tex").read_text()
    assert "NOT COMPARABLE: embedded (source embedded) is no published benchmark; it borrows the MIRFlickr-25K" in tex
