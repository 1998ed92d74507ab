"""The robustness study (issue 21): Holm's correction, the seed-paired tests, the study's tables
and figure, config/robustness.yaml (config check and the planned jobs) and a tiny run of the
robustness outputs through Snakemake."""
import copy
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from cmhash.config import (
    cells,
    check_config,
    load_and_check,
    training_cells,
    validate_schema,
)
from cmhash.errors import ConfigError, DataError
from cmhash.report.robustness import (
    AUC_COLUMNS,
    CLEAN,
    TABLE_COLUMNS,
    TESTED,
    map_table,
    map_table_latex,
    map_vs_rate,
    run_map,
    selection_auc,
    selection_auc_latex,
    study_runs,
)
from cmhash.report.significance import holm, mark_significant, paired_tests
from cmhash.report.tables import latex_document
from tests.helpers import REPO, SHARED_DATA, copy_workflow, planned_jobs, run_snakemake

WIKIPEDIA = SHARED_DATA / "wikipedia"
needs_wikipedia = pytest.mark.skipif(not (WIKIPEDIA / "trainset_txt_img_cat.list").is_file(),
                                     reason=f"the Wikipedia benchmark files are not in {WIKIPEDIA}")


# -- Holm's step-down adjustment ----------------------------------------------------------------
def test_holm_matches_a_hand_computed_example():
    # sorted: .005 (x4 = .02), .01 (x3 = .03), .03 (x2 = .06), .04 (x1 = .04 -> .06, never below the one before)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # at alpha .05 Holm rejects .005 (< .05/4) and .01 (< .05/3), then stops at .03 (> .05/2)
    assert list(holm([0.01, 0.04, 0.03, 0.005]) < 0.05) == [True, False, False, True]


def test_holm_caps_at_one_leaves_untested_out_and_keeps_ties():
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = holm([np.nan, 0.01, 0.02])  # m = 2: the NaN is no comparison
    assert np.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.02, 0.02])
    assert holm([0.01, 0.01, 0.04]) == pytest.approx([0.03, 0.03, 0.04])
    assert holm([0.2]) == pytest.approx([0.2]) and holm([]).size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


# -- the seed-paired t-test and its marks -----------------------------------------------------------
def _runs(values: dict[str, list[float]], rate: float = 0.5, model: str = "nrch") -> list[dict]:
    return [{"dataset": "d", "protocol": "sound", "bits": 64, "noise_model": model, "rate": rate, "method": method,
             "seed": seed, "map": v} for method, vs in values.items() for seed, v in enumerate(vs)]


def test_a_clear_difference_is_marked_and_no_difference_is_not():
    base = [0.50, 0.52, 0.51]
    frame = pd.DataFrame(_runs({"baseline": base,
                                "better": [b + d for b, d in zip(base, (0.10, 0.11, 0.10))],
                                "same": [b + d for b, d in zip(base, (0.010, -0.012, 0.001))]}))
    tests = paired_tests(frame, "baseline", ["dataset", "protocol", "bits", "noise_model", "rate"])
    better = tests.set_index("method").loc["better"]
    # by hand: differences .10 .11 .10, mean .10333, sd .005774, se .003333, t = 31.0 on 2 degrees of freedom
    assert better.n_pairs == 3 and better.mean_difference == pytest.approx(0.103333, abs=1e-6)
    assert better.t == pytest.approx(31.0, rel=1e-6)
    assert better.p == pytest.approx(2 * stats.t.sf(31.0, df=2), rel=1e-6)
    marked = mark_significant(tests, alpha=0.05).set_index("method")
    assert marked.loc["better", "p_holm"] == pytest.approx(2 * better.p)  # the smaller of two p-values, x2
    assert marked.loc["better", "significant"] and marked.loc["better", "sign"] == "higher"
    assert not marked.loc["same", "significant"] and marked.loc["same", "sign"] == ""
    worse = pd.DataFrame(_runs({"baseline": base, "worse": [b - d for b, d in zip(base, (0.10, 0.11, 0.10))]}))
    marked = mark_significant(paired_tests(worse, "baseline", ["rate"]))
    assert marked.significant.all() and (marked.sign == "lower").all()


def test_paired_tests_pair_by_seed_and_say_where_they_cannot_test():
    frame = pd.DataFrame(_runs({"baseline": [0.5, 0.6, 0.7], "m": [0.6, 0.75]}))  # m lacks seed 2
    test = paired_tests(frame, "baseline", ["rate"]).iloc[0]
    assert test.n_pairs == 2 and test.p == pytest.approx(stats.ttest_rel([0.6, 0.75], [0.5, 0.6]).pvalue)
    # the same difference at every seed up to rounding (.6 - .5 != .7 - .6 in floats): scipy's exact-case value
    constant = paired_tests(pd.DataFrame(_runs({"baseline": [0.5, 0.6], "m": [0.6, 0.7]})), "baseline", ["rate"])
    assert constant.p.tolist() == [0.0] and constant.t.tolist() == [np.inf]
    identical = paired_tests(pd.DataFrame(_runs({"baseline": [0.5, 0.6], "m": [0.5, 0.6]})), "baseline", ["rate"])
    assert np.isnan(identical.p).all()  # no difference at all: nothing to test
    one = pd.DataFrame(_runs({"baseline": [0.5], "m": [0.6]}))
    assert np.isnan(paired_tests(one, "baseline", ["rate"]).p).all()
    assert paired_tests(pd.DataFrame(_runs({"m": [0.6, 0.7]})), "baseline", ["rate"]).empty
    with pytest.raises(DataError, match="several rows"):
        paired_tests(pd.concat([frame, frame]), "baseline", ["rate"])


def test_holm_adjusts_within_each_table_only():
    rows = []
    for dataset, shift in (("a", 0.1), ("b", 0.1)):
        for rate in (0.2, 0.5):
            rows += [{**r, "dataset": dataset} for r in _runs({"baseline": [0.5, 0.52, 0.51],
                                                               "m": [0.5 + shift, 0.53 + shift, 0.51 + shift]}, rate)]
    tests = paired_tests(pd.DataFrame(rows), "baseline", ["dataset", "rate"])
    marked = mark_significant(tests, family=["dataset"])
    for _, table in marked.groupby("dataset"):
        assert table.p_holm.to_numpy() == pytest.approx(holm(table.p.to_numpy()))  # m = 2 per table, not 4


# -- the study's table, figure and AUC table on a synthetic study -----------------------------------
METHODS = {"baseline": 0.60, "scbch": 0.70, "nrch": 0.605, "ucch": 0.40, "dcgmh": 0.55}
OFFSETS = {"baseline": (0.0, 0.0, 0.0), "scbch": (0.002, -0.003, 0.001), "nrch": (0.004, -0.005, 0.003),
           "ucch": (-0.002, 0.001, 0.003), "dcgmh": (0.0, 0.0, 0.0)}


def study_results() -> pd.DataFrame:
    """collect_results' rows of a small study: two noise models x two rates and clean labels,
    three seeds; SCBCH clearly above the baseline, NRCH within the seed spread, UCCH label-free
    (the same run in every noise cell of a seed), DCGMH fused."""
    rows = []
    jitter = {0: 0.0, 1: 0.01, 2: -0.006}
    for method, level in METHODS.items():
        for model, rate in (("nrch", 0.0), ("nrch", 0.2), ("nrch", 0.5), ("sym", 0.2), ("sym", 0.5)):
            for seed in range(3):
                value = level - (0 if method == "ucch" else rate / 5) + jitter[seed]
                value += OFFSETS[method][seed] + 0.001 * (model == "sym" and method != "ucch")
                directions = {"fused": value} if method == "dcgmh" else {"i2t": value - 0.02, "t2i": value + 0.02}
                for direction, v in directions.items():
                    rows.append(dict(dataset="embedded", method=method, noise_model=model, rate=rate, bits=64,
                                     seed=seed, protocol="sound", direction=direction, map=v,
                                     **({"label_free": True} if method == "ucch" else {})))
    return pd.DataFrame(rows)


def test_run_map_averages_the_directions_and_keeps_the_fused_one():
    runs = run_map(study_results())
    assert len(runs) == len(METHODS) * 5 * 3
    one = runs[(runs.method == "scbch") & (runs.noise_model == "nrch") & (runs.rate == 0.5) & (runs.seed == 1)]
    assert one["map"].tolist() == pytest.approx([0.70 - 0.1 + 0.01 - 0.003])  # (i2t + t2i) / 2
    assert set(runs.loc[runs.method == "dcgmh", "task"]) == {"fused"}
    assert set(runs.loc[runs.method != "dcgmh", "task"]) == {"cross-modal"}
    assert runs.loc[runs.method == "ucch", "label_free"].all() and not runs.loc[runs.method == "nrch", "label_free"].any()


def test_map_table_marks_what_differs_from_the_baseline():
    runs = study_runs(run_map(study_results()), "sound")
    assert set(runs.noise_model) == {CLEAN, "nrch", "sym"} and (runs.loc[runs.noise_model == CLEAN, "rate"] == 0).all()
    table = map_table(runs, "baseline")
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == len(METHODS) * 5  # clean + 2 models x 2 rates per method
    cell = table.set_index(["method", "noise_model", "rate"])
    assert cell.loc[("scbch", "nrch", 0.5), "mean"] == pytest.approx(0.70 - 0.1 + (0.01 - 0.006) / 3)  # offsets: 0
    assert cell.loc[("scbch", CLEAN, 0.0), "n"] == 3
    tested = table[table.test == TESTED]
    assert set(tested.method) == {"scbch", "nrch", "ucch"}  # dcgmh (fused) is not compared; the baseline is the reference
    assert len(tested) == 3 * 5
    assert tested.p_holm.to_numpy() == pytest.approx(holm(tested.p.to_numpy()))  # one family: the table
    assert table.loc[table.method == "scbch", "sign"].eq("higher").all()
    assert table.loc[table.method == "ucch", "sign"].eq("lower").all()
    assert not table.loc[table.method == "nrch", "significant"].any()
    assert table.loc[table.method == "dcgmh", "test"].str.startswith("not tested: another task").all()
    assert table.loc[table.method == "baseline", "test"].eq("reference").all()
    assert table.method.iloc[0] == "baseline"  # the reference first


def test_map_table_latex_layout_and_caption():
    table = map_table(study_runs(run_map(study_results()), "sound"), "baseline")
    tex = map_table_latex(table)
    assert tex.count(r"\begin{tabular}") == 1 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{2}{c}{nrch}" in tex and r"\multicolumn{2}{c}{sym}" in tex and "clean" in tex
    assert "ttest\\_rel" in tex and "Holm" in tex and "15 comparisons" in tex and "2 degrees of freedom" in tex
    rows = {line.split(" & ")[0]: line for line in tex.splitlines() if " & " in line and "multicolumn" not in line}
    assert rows["scbch"].count(r"$^{\uparrow}$") == 5 and r"\uparrow" not in rows["nrch"]
    assert rows[r"ucch$^\dagger$"].count(r"$^{\downarrow}$") == 5 and "dcgmh (fused)" in rows
    assert rows["scbch"].startswith("scbch & 0.701")  # clean first: .70 + (.01 - .006) / 3
    doc = latex_document(tex)
    assert doc.count(r"\begin{") == doc.count(r"\end{")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine (pdflatex) installed")
def test_robustness_tables_compile_with_pdflatex(tmp_path):
    runs = study_runs(run_map(study_results()), "sound")
    auc = selection_auc(diagnostics_history(), "sound")
    body = map_table_latex(map_table(runs, "baseline")) + selection_auc_latex(auc, "embedded", "sound")
    (tmp_path / "r.tex").write_text(latex_document(body))
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "r.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_the_figure_starts_every_panel_from_the_clean_runs(tmp_path):
    runs = study_runs(run_map(study_results()), "sound")
    data = map_vs_rate(runs, tmp_path / "f.pdf", tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert set(data["noise model"]) == {"nrch", "sym"}
    clean = data[data.rate == 0]
    assert len(clean) == 2 * len(METHODS) * 3  # the clean runs in both panels
    empty = map_vs_rate(runs[runs.noise_model == CLEAN], tmp_path / "e.pdf", tmp_path / "e.png")
    assert empty.empty and (tmp_path / "e.png").stat().st_size > 1000


def diagnostics_history() -> pd.DataFrame:
    """load_diagnostics' rows: nrch and scbch log the AUC over 3 epochs (scbch not at its last
    one), the baseline logs none; rate 0 logs no AUC."""
    rows = []
    for method, level in (("nrch", 0.6), ("scbch", 0.8)):
        for model, rate in (("nrch", 0.2), ("nrch", 0.5), ("sym", 0.5)):
            for seed in range(3):
                for epoch in range(3 if method == "nrch" else 2):
                    rows.append({"dataset": "embedded", "method": method, "noise_model": model, "rate": rate,
                                 "bits": 64, "seed": seed, "protocol": "sound", "epoch": epoch, "diagnostic": "auc",
                                 "value": level + epoch / 100 + seed / 1000})
                    rows.append({**rows[-1], "diagnostic": "kept_fraction", "value": 0.9})
    return pd.DataFrame(rows)


def test_selection_auc_reads_the_last_epoch_that_logged_it():
    auc = selection_auc(diagnostics_history(), "sound")
    assert list(auc.columns) == AUC_COLUMNS and len(auc) == 2 * 3
    nrch = auc.set_index(["method", "noise_model", "rate"]).loc[("nrch", "nrch", 0.5)]
    assert nrch["mean"] == pytest.approx(0.62 + 0.001) and nrch.epoch == 2 and nrch.n == 3 and nrch.module == "separator"
    scbch = auc.set_index(["method", "noise_model", "rate"]).loc[("scbch", "sym", 0.5)]
    assert scbch["mean"] == pytest.approx(0.81 + 0.001) and scbch.epoch == 1 and scbch.module == "CSCC"
    tex = selection_auc_latex(auc, "embedded", "sound")
    assert "nrch (separator)" in tex and "scbch (CSCC)" in tex and r"\multicolumn{2}{c}{nrch}" in tex
    assert selection_auc(diagnostics_history(), "paper").empty
    assert "No method" in selection_auc_latex(selection_auc(diagnostics_history(), "paper"), "embedded", "paper")


# -- config/robustness.yaml -------------------------------------------------------------------------
CONFIG = REPO / "config" / "robustness.yaml"


@needs_wikipedia
def test_the_robustness_config_passes_the_check_and_has_the_documented_size():
    cfg = load_and_check(CONFIG)
    grid = cells(cfg)
    jobs = training_cells(cfg)
    ucch = [c for c in jobs if c.method == "ucch"]
    assert len(ucch) == 6 and {(c.dataset, c.seed) for c in ucch} == {(d, s) for d in ("embedded", "wikipedia")
                                                                     for s in range(3)}
    assert len(jobs) == 354 and len(grid) == 348 + len([c for c in grid if c.method == "ucch"])
    assert {c.protocol for c in grid} == {"sound"} and {c.bits for c in grid} == {64}
    assert not any(c.dataset == "wikipedia" and c.noise_model == "missing" for c in grid)  # single-label data
    for method in ("baseline", "nrch", "scbch", "ucch", "dcgmh"):
        for dataset in ("embedded", "wikipedia"):
            assert any(c.method == method and c.dataset == dataset and c.rate == 0 for c in grid), (method, dataset)
    assert not any(c.method == "dcmh" for c in grid)  # near chance in any affordable preset (the config says why)
    text = CONFIG.read_text()
    assert "354 training jobs" in text and "whole study, measured" in text and "ESTIMATE" not in text


def test_a_robustness_reference_outside_the_grid_is_named():
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["report"]["robustness"] = {"baseline": "scbch"}
    validate_schema(cfg)
    with pytest.raises(ConfigError, match=r"report\.robustness\.baseline: 'scbch' is not a grid method on dataset "
                                          r"'embedded'"):
        check_config(cfg)
    cfg["report"]["robustness"] = {"protocol": "paper"}
    cfg["grid"]["protocols"] = ["sound"]
    with pytest.raises(ConfigError, match=r"report\.robustness\.protocol: 'paper' is not a protocol of the grid"):
        check_config(cfg)
    cfg["report"]["robustness"] = {"alpha": 1.5}
    with pytest.raises(ConfigError, match=r"report\.robustness\.alpha"):
        validate_schema(cfg)


def snakemake(workdir: Path, *args: str, configfile: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Snakemake on one core."""
    return run_snakemake(workdir, *args, configfile=configfile, cores=1, timeout=timeout)


@needs_wikipedia
def test_a_dry_run_plans_the_documented_jobs(tmp_path):
    copy_workflow(tmp_path)
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["datasets"]["wikipedia"]["path"] = str(WIKIPEDIA)  # relative to the repository in the config
    (tmp_path / "config/robustness.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(snakemake(tmp_path, "--dry-run", configfile="config/robustness.yaml"))
    # UCCH reads no label: one run per (dataset, seed), not one per noise model and rate
    assert jobs.get("train_label_free") == 2 * 3 and jobs.get("evaluate_label_free") == 2 * 3, jobs
    assert jobs.get("train") == 192 + 156 and jobs.get("evaluate") == 348, jobs
    assert jobs.get("noise") == 48 + 39 and jobs.get("robustness") == 2 and jobs.get("report") == 1, jobs
    assert sum(jobs.values()) == 806, jobs  # the size the config's comments give (805 and `all`)


# -- a tiny study through Snakemake -----------------------------------------------------------------
def tiny_config() -> dict:
    """config/test.yaml's embedded set as a study: baseline and NRCH, noise model sym at 0.5 and
    clean labels, two seeds (the fewest a paired test takes), tiny widths: 8 training jobs."""
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config" / "test.yaml").read_text()))
    cfg["experiment"] = "cmhash-test-robustness"
    cfg["grid"].update(methods=["baseline", "nrch"], noise_models=["sym"], noise_rates=[0.5], seeds=[0, 1],
                       protocols=["sound"], also=[{"noise_models": ["sym"], "noise_rates": [0.0]}])
    cfg["methods"]["nrch"] = {"epochs": 3, "warmup_epochs": 1, "eval_every": 3, "batch_size": 32, "lr": 1e-4,
                              "image_hidden": [32], "text_hidden": [32]}
    cfg["methods"]["baseline"].update(epochs=3, eval_every=3)
    cfg["report"]["robustness"] = {"baseline": "baseline", "alpha": 0.05}
    return cfg


@pytest.mark.integration
def test_a_tiny_study_writes_the_robustness_outputs(tmp_path):
    copy_workflow(tmp_path)
    cfg = tiny_config()
    (tmp_path / "config/tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    folder = "results/report/robustness/embedded"
    names = ["map_vs_rate.pdf", "map_vs_rate.png", "map_table.csv", "map_table.tex", "selection_auc.csv",
             "selection_auc.tex"]
    snakemake(tmp_path, *(f"{folder}/{n}" for n in names), configfile="config/tiny.yaml", timeout=900)
    out = tmp_path / folder
    table = pd.read_csv(out / "map_table.csv")
    assert set(zip(table.noise_model, table.rate)) == {(CLEAN, 0.0), ("sym", 0.5)}
    assert set(table.method) == {"baseline", "nrch"} and (table.n == 2).all()
    assert table["mean"].between(0, 1).all()
    nrch = table[table.method == "nrch"]
    assert (nrch.test == TESTED).all() and (nrch.n_pairs == 2).all() and nrch.p_holm.notna().all()
    assert (table.loc[table.method == "baseline", "test"] == "reference").all()
    tex = (out / "map_table.tex").read_text()
    assert r"\toprule" in tex and "ttest\\_rel" in tex and "Holm" in tex
    auc = pd.read_csv(out / "selection_auc.csv")
    assert set(auc.method) == {"nrch"} and set(auc.noise_model) == {"sym"} and auc["mean"].between(0, 1).all()
    assert (out / "map_vs_rate.png").stat().st_size > 1000 and (out / "map_vs_rate.pdf").read_bytes()[:4] == b"%PDF"
    log = (tmp_path / "results/logs/robustness/embedded.log").read_text()
    assert "Traceback" not in log
    # the rule's outputs are registered for the HTML report with their captions
    snakemake(tmp_path, *(f"{folder}/{n}" for n in names), "--report", "report.html", configfile="config/tiny.yaml")
    page = (tmp_path / "report.html").read_text()
    assert "map_table.tex" in page and "selection_auc.csv" in page and "map_vs_rate.png" in page
    assert re.search(r"Robustness", page)
