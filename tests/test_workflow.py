"""Integration: the real Snakemake DAG on the tiny grid of config/test.yaml, in a temporary
directory, checking every stage's outputs and the MLflow runs."""
import html
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cmhash.config import cells
from cmhash.report import FIGURES
from tests.helpers import REPO, copy_workflow, planned_jobs, run_snakemake

pytestmark = pytest.mark.integration


def snakemake(workdir: Path, *args: str, check: bool = True, configfile: str = "config/test.yaml"
              ) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, *args, configfile=configfile, resources=("gpu=1",), check=check)


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("workflow")
    copy_workflow(work)
    proc = snakemake(work)
    return work, proc


def test_every_output_exists_and_is_consistent(workflow_run):
    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    # raw layout and prepared form
    assert (work / "results/raw/embedded/mirflickr/im1.jpg").is_file()
    labels = np.load(work / "results/datasets/embedded/labels.npy")
    image = np.load(work / "results/datasets/embedded/image.npy")
    text = np.load(work / "results/datasets/embedded/text.npy")
    assert image.shape == (labels.shape[0], 4096) and text.shape == (labels.shape[0], 16)
    assert labels.shape[1] == 24 and labels.sum(1).min() >= 1
    meta = json.loads((work / "results/datasets/embedded/meta.json").read_text())
    assert meta["image_features"]["weights"] == "none"
    # noise: exactly floor(r * n_train) corrupted rows, shared between protocols
    noise = work / "results/noise/embedded/nrch-0.5/seed0"
    assert np.load(noise / "corrupted.npy").sum() == 50
    assert np.load(noise / "noisy_labels.npy").shape == (100, 24)
    # every cell trained and evaluated
    for cell in cells(cfg):
        run = work / cell.run_dir
        metrics = json.loads((run / "metrics.json").read_text())
        assert set(metrics["directions"]) == {"i2t", "t2i"}
        for values in metrics["directions"].values():
            assert 0 < values["map"] <= 1
        assert (run / "codes" / "query_image.npy").is_file()
        history = pd.read_csv(run / "history.csv")
        assert len(history) == cfg["methods"]["baseline"]["epochs"] + 1
        resolved = json.loads((run / "config.json").read_text())
        assert resolved["cell"]["protocol"] == cell.protocol and resolved["hparams"]["epochs"] == 4
    # report
    table = (work / "results/report/tables.tex").read_text()
    assert r"\toprule" in table and r"\textbf{" in table and "baseline" in table
    for name in FIGURES:  # every figure, also those with nothing to show (no diagnostics, no published cell)
        assert (work / f"results/report/{name}.png").stat().st_size > 1000
        assert (work / f"results/report/{name}.pdf").read_bytes()[:4] == b"%PDF"
    results = pd.read_csv(work / "results/report/results.csv")
    assert len(results) == 2 * len(cells(cfg))
    # the paper table: NRCH's MIRFlickr table whole (embedded borrows its layout), the baseline a row of its own
    paper = pd.read_csv(work / "results/report/paper_tables.csv")
    status = paper.groupby("row", sort=False)["status"].first()
    assert len(status) == 13 and (status.iloc[:12] == "not run here").all() and status["baseline"] == "ours only"
    assert set(paper.layout) == {"mirflickr25k"} and not paper.comparable.any()
    assert (paper[(paper.row == "baseline") & (paper.rate == 0.5) & (paper.bits == 16)].paper_n == 1).all()
    assert "NOT COMPARABLE" in (work / "results/report/paper_tables.tex").read_text()


def test_mlflow_has_one_complete_run_per_cell(workflow_run):
    from cmhash.tracking import find_runs

    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    runs = find_runs(f"sqlite:///{work / 'results/mlflow.db'}", cfg["experiment"])
    assert len(runs) == len(cells(cfg))
    keys = {(r["params"]["method"], r["params"]["rate"], r["params"]["protocol"]) for r in runs}
    assert len(keys) == len(runs)
    for run in runs:
        assert run["status"] == "FINISHED"
        assert {"dataset", "method", "noise_model", "rate", "bits", "seed", "protocol"} <= set(run["tags"])
        assert "git_commit" in run["tags"]
        # the embedded set has no benchmark family (MIRFlickr's values borrowed) and no published input file
        assert run["params"]["family"] == "none" and run["params"]["input_checksums"] == "none"
        assert "loss/total" in run["metrics"] and "i2t/map" in run["metrics"]


def test_mlflow_ui_shows_every_cell_in_a_browser(workflow_run, tmp_path):
    """`mlflow ui` on the store, opened in a headless Debian chromium: cmhash's link opens the
    runs table (not the GenAI view) listing every cell with its dataset and headline mAP
    columns; a run's page shows its parameters, metrics and dataset."""
    from cmhash.tracking import experiment_info, find_runs
    from tests import mlflow_ui

    missing = mlflow_ui.browser_missing()
    if missing:
        pytest.skip(missing)
    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    uri = f"sqlite:///{work / 'results/mlflow.db'}"
    experiment_id = experiment_info(uri, cfg["experiment"])["experiment_id"]
    runs = sorted(find_runs(uri, cfg["experiment"]), key=lambda r: r["run_name"])
    names = [r["run_name"] for r in runs]
    assert len(names) == len(cells(cfg))
    with mlflow_ui.mlflow_ui(uri) as base, mlflow_ui.chromium() as driver:
        datasets = sorted({f"{d['name']} ({d['digest']})" for r in runs for d in r["datasets"]})
        page = mlflow_ui.open_runs_table(driver, base, experiment_id, [*names, *datasets, "i2t/map", "t2i/map"])
        assert "Judges" not in page and "Sessions" not in page  # the model-training sidebar, not GenAI's
        mlflow_ui.close_assistant(driver)
        driver.save_screenshot(str(tmp_path / "runs.png"))
        assert (tmp_path / "runs.png").stat().st_size > 10_000
        run = runs[0]
        dataset = run["datasets"][0]
        page = mlflow_ui.open_run(driver, run["run_name"], [
            f"Parameters ({len(run['params'])})", f"Metrics ({len(run['metrics'])})",
            f"{dataset['name']} ({dataset['digest']})", "i2t/map", "hp.epochs", "protocol"])
        assert run["run_id"] in page


def test_html_report_holds_every_figure_and_table_with_its_caption(workflow_run):
    work, _ = workflow_run
    snakemake(work, "--report", "report.html")
    page = html.unescape((work / "report.html").read_text())
    for name in FIGURES:
        assert f"{name}.png" in page and f"{name}.pdf" in page
        caption = (work / "workflow/report" / f"{name}.rst").read_text().replace("\\@", "@")  # rst escape
        first_words = " ".join(caption.split()[:4])
        assert first_words in page, name
    for table in ("results.csv", "tables.tex", "delta_published.csv", "delta_published.tex", "paper_tables.csv",
                  "paper_tables.tex"):
        assert table in page
    caption = (work / "workflow/report/paper_tables.rst").read_text()
    assert " ".join(caption.split()[:4]) in page


def test_rerun_is_a_no_op_and_lint_is_clean(workflow_run):
    work, _ = workflow_run
    proc = snakemake(work, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_training_settings_rerun_exactly_the_training_jobs(workflow_run):
    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    cfg["datasets"]["embedded"]["standardize_features"] = True
    (work / "config/changed.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is part of a param
    jobs = planned_jobs(snakemake(work, "--dry-run", configfile="config/changed.yaml"))
    n_cells = len(cells(cfg))
    assert jobs.get("train") == n_cells and jobs.get("evaluate") == n_cells, jobs
    for rule in ("generate_embedded", "prepare", "image_features", "text_features", "assemble_dataset", "noise",
                 "mlflow_experiment"):
        assert rule not in jobs, jobs  # no data or feature job reruns for a training-only key
    cfg["datasets"]["embedded"].pop("standardize_features")
    cfg["methods"]["baseline"]["lr"] = 0.01
    (work / "config/changed.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is part of a param
    jobs = planned_jobs(snakemake(work, "--dry-run", configfile="config/changed.yaml"))
    assert jobs.get("train") == n_cells, jobs


def test_another_experiment_reruns_no_training_job(workflow_run):
    """Configs sharing results/ (e.g. the demo and Wikipedia) each keep their MLflow experiment
    record, so running one does not make the other's finished cells look out of date."""
    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    cfg["experiment"] = "another experiment/name"
    (work / "config/other.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work, "mlflow_experiment", configfile="config/other.yaml")
    assert (work / "results/mlflow/experiments/another%20experiment%2Fname.json").is_file()
    proc = snakemake(work, "--dry-run")  # back to the first config: nothing to do
    assert "Nothing to be done" in proc.stdout + proc.stderr


# -- issue 15: one owner of the layout, declared inputs, rerun params, tracebacks in logs ----------
@pytest.mark.parametrize("config", ["config/test.yaml", "config/demo.yaml"])
def test_the_cell_module_gives_the_paths_the_rules_produce(config, tmp_path):
    """Every training job a dry run plans writes exactly where cmhash.cell says its cell lives."""
    copy_workflow(tmp_path)
    proc = snakemake(tmp_path, "--dry-run", configfile=config)
    planned = set()
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip().startswith("output:"):
            planned |= {p.strip() for p in line.split(":", 1)[1].split(",") if p.strip().endswith("/train.json")}
    cfg = yaml.safe_load((REPO / config).read_text())
    assert planned == {f"{c.run_dir}/train.json" for c in cells(cfg)}


def _changed(work: Path, **updates) -> str:
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    for dotted, value in updates.items():
        node, *path = dotted.split("__")
        target = cfg[node]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    (work / "config/changed.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return "config/changed.yaml"


def test_result_settings_are_params_and_rerun_exactly_their_jobs(workflow_run):
    """test.yaml's baseline keeps its best-scoring epoch, so the tie order moves its training;
    a variant keeping its last epoch is trained here too and must not rerun for the ties."""
    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    cfg["methods"]["baseline_last"] = {**cfg["methods"]["baseline"], "variant_of": "baseline", "selection": "last"}
    cfg["grid"]["methods"] = ["baseline", "baseline_last"]
    (work / "config/test.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work)  # trains the variant's cells
    n = len(cells(cfg))
    jobs = planned_jobs(snakemake(work, "--dry-run", configfile=_changed(work, evaluation__ties="expected")))
    assert jobs.get("evaluate") == n and jobs.get("train") == n // 2, jobs  # the baseline's cells only
    jobs = planned_jobs(snakemake(work, "--dry-run", configfile=_changed(work, evaluation__precision_at=[1, 5])))
    assert jobs.get("evaluate") == n and "train" not in jobs, jobs
    proc = snakemake(work, "--dry-run", configfile=_changed(work, training__progress=True))  # changes no result
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_failing_job_has_its_traceback_in_its_log(workflow_run):
    work, _ = workflow_run
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    cell = cells(cfg)[0]
    noisy = work / cell.noise_dir / "noisy_labels.npy"
    kept = noisy.read_bytes()
    noisy.write_bytes(b"not a npy file")  # a corrupt input: the training stage raises a DataError
    try:
        proc = snakemake(work, f"{cell.run_dir}/train.json", "--forcerun", "train", check=False)
    finally:
        noisy.write_bytes(kept)
    assert proc.returncode != 0
    log = (work / "results/logs/train" / cell.dataset / cell.method / f"{cell.noise_model}-{cell.rate_str}"
           / f"bits{cell.bits}-seed{cell.seed}-{cell.protocol}.log").read_text()
    assert "Traceback (most recent call last)" in log and "DataError" in log and "noisy_labels.npy" in log


# -- issue 17: a label-free method trains once per (dataset, bits, seed, protocol) --------------
LABEL_FREE_METHODS = {"ucch": {"epochs": 2, "batch_size": 32, "negatives": 16, "image_hidden": [32], "text_hidden": [32]}}


def _label_free_config(work: Path, rates: list[float]) -> str:
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    cfg["experiment"] = "cmhash-test-label-free"
    cfg["grid"].update(methods=["baseline", *LABEL_FREE_METHODS], noise_rates=rates)
    cfg["methods"].update(LABEL_FREE_METHODS)
    (work / "config/label_free.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return "config/label_free.yaml"


def test_a_label_free_method_trains_once_for_every_noise_rate(tmp_path):
    copy_workflow(tmp_path)
    config = _label_free_config(tmp_path, [0.2, 0.5, 0.8])
    jobs = planned_jobs(snakemake(tmp_path, "--dry-run", configfile=config))
    assert jobs.get("train") == 3 * 2 and jobs.get("train_label_free") == 2, jobs  # 2 protocols, not 6 cells
    assert jobs.get("evaluate_label_free") == 2, jobs
    config = _label_free_config(tmp_path, [0.0, 0.5])
    snakemake(tmp_path, configfile=config)
    results = pd.read_csv(tmp_path / "results/report/results.csv")
    ucch = results[results["method"] == "ucch"]
    assert len(ucch) == 2 * 2 * 2 and ucch["label_free"].all()  # every (rate, protocol, direction) filled
    assert not results.loc[results["method"] == "baseline", "label_free"].any()
    flat = ucch.groupby(["protocol", "direction"])["map"].nunique()
    assert (flat == 1).all()  # the same run, a flat line over the noise
    run = tmp_path / "results/runs/embedded/ucch/label-free/bits16/seed0/sound"
    assert json.loads((run / "config.json").read_text())["needs"]["labels"] is False
    assert r"ucch$^\dagger$" in (tmp_path / "results/report/tables.tex").read_text()


# -- issue 18: the comparison rows run in the grid like any method ----------------------------
COMPARISON_METHODS = {
    "dcmh": {"epochs": 4, "batch_size": 32, "eval_every": 2, "text_hidden": [32]},
    "dchuc": {"epochs": 4, "inner_epochs": 1, "batch_size": 16, "num_samples": 48, "eval_every": 2,
              "text_hidden": 32},
    "rshnl": {"epochs": 3, "warmup_epochs": 1, "batch_size": 32, "image_hidden": [32, 32],
              "text_hidden": [32, 32], "centre_hidden": [32, 32]},
}


def test_the_comparison_methods_run_through_the_workflow(tmp_path):
    copy_workflow(tmp_path)
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    cfg["experiment"] = "cmhash-test-comparison"
    cfg["grid"].update(methods=list(COMPARISON_METHODS), noise_rates=[0.5], protocols=["sound"])
    cfg["methods"].update(COMPARISON_METHODS)
    (tmp_path / "config/comparison.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(tmp_path, configfile="config/comparison.yaml")
    results = pd.read_csv(tmp_path / "results/report/results.csv")
    assert set(results["method"]) == set(COMPARISON_METHODS)
    assert len(results) == len(COMPARISON_METHODS) * 2 and results["map"].between(0, 1).all()  # i2t and t2i each
    for method in COMPARISON_METHODS:
        run = tmp_path / f"results/runs/embedded/{method}/nrch-0.5/bits16/seed0/sound"
        record = json.loads((run / "config.json").read_text())
        assert record["cell"]["method"] == method and record["hparams"]["epochs"] == COMPARISON_METHODS[method]["epochs"]
        assert len(pd.read_csv(run / "history.csv")) > 0
    # the embedded set is in no method's published family: DCHUC borrows NUS-WIDE's values, logged
    dchuc = json.loads((tmp_path / "results/runs/embedded/dchuc/nrch-0.5/bits16/seed0/sound/config.json").read_text())
    assert dchuc["family"] is None and {"gamma", "alpha", "mu"} <= set(dchuc["borrowed"])
