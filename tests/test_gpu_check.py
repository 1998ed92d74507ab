"""benchmarks/gpu_check.sh --dry: every step runs on the CPU and leaves its row in the table,
and a failing step is named in the exit status while the others still report."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from tests.helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
STEPS = ["versions", "cuda_tests", "epoch_baseline", "epoch_nrch", "epoch_scbch", "epoch_dcgmh",
         "wiki_nrch", "wiki_scbch", "eval_nus"]


@pytest.fixture(scope="module")
def miniature_wikipedia(tmp_path_factory) -> Path:
    """The published Wikipedia layout (raw_features.mat + the three .list files), 60 training
    and 20 test pairs over 3 categories, so the dry run needs no ../shared data."""
    folder = tmp_path_factory.mktemp("wikipedia")
    rng = np.random.default_rng(0)
    cats = {"tr": rng.integers(1, 4, 60), "te": rng.integers(1, 4, 20)}
    centres_i, centres_t = rng.normal(size=(3, 16)), rng.normal(size=(3, 5))
    arrays = {}
    for part, c in cats.items():
        arrays[f"I_{part}"] = centres_i[c - 1] + 0.3 * rng.normal(size=(c.size, 16))
        arrays[f"T_{part}"] = centres_t[c - 1] + 0.3 * rng.normal(size=(c.size, 5))
    scipy.io.savemat(folder / "raw_features.mat", arrays)
    (folder / "categories.list").write_text("art\nbiology\ngeography\n")
    for part, name in (("tr", "trainset_txt_img_cat.list"), ("te", "testset_txt_img_cat.list")):
        (folder / name).write_text("".join(f"t{part}{i}\ti{part}{i}\t{c}\n" for i, c in enumerate(cats[part])))
    return folder


def run(out: Path, *args: str, timeout: float = 570.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), "--dry", *args, str(out)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO, check=False)


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "gpu_check.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_dry_run_writes_every_step_row(tmp_path, miniature_wikipedia):
    out = tmp_path / "gpu check"  # a space: paths are quoted
    proc = run(out, "--wikipedia", str(miniature_wikipedia))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = rows(out)
    assert [r["step"] for r in table] == STEPS
    assert all(r["status"] == "ok" and r["result"] for r in table), table
    markdown = (out / "gpu_check.md").read_text()
    assert "# GPU check (dry)" in markdown
    for step in STEPS:
        assert f"| {step} | ok |" in markdown
        assert (out / "logs" / f"{step}.log").is_file()
        assert "summary" in json.loads((out / "steps" / f"{step}.json").read_text())
    epoch = json.loads((out / "steps" / "epoch_nrch.json").read_text())
    assert epoch["method"] == "nrch" and [e["epoch"] for e in epoch["epochs"]] == [19, 20] and epoch["s_per_epoch"] > 0
    cell = json.loads((out / "steps" / "wiki_scbch.json").read_text())
    assert set(cell["map"]) == {"i2t", "t2i"} and cell["epochs"] == 2 and cell["data"] == str(miniature_wikipedia)
    assert json.loads((out / "steps" / "eval_nus.json").read_text())["device_check"]["ok"]
    assert json.loads((out / "steps" / "cuda_tests.json").read_text())["failed"] == []


def test_a_failing_step_is_named_and_the_others_still_report(tmp_path):
    out = tmp_path / "out"
    proc = run(out, "--steps", "versions,wiki_nrch", "--wikipedia", str(tmp_path / "absent"), timeout=120)
    assert proc.returncode == 1
    assert "FAILED steps: wiki_nrch; not run: none" in proc.stderr
    table = {r["step"]: r for r in rows(out)}
    assert list(table) == ["versions", "wiki_nrch"]
    assert table["versions"]["status"] == "ok"
    assert table["wiki_nrch"]["status"] == "FAIL" and "Wikipedia folder not found" in table["wiki_nrch"]["result"]
    assert "| wiki_nrch | FAIL |" in (out / "gpu_check.md").read_text()


def test_steps_past_the_budget_are_skipped_with_a_row(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), "--dry", str(out)], capture_output=True, text=True, timeout=60,
                          check=False, cwd=REPO, env={**os.environ, "PYTHON": sys.executable, "GPU_CHECK_BUDGET": "0"})
    assert proc.returncode == 1 and f"FAILED steps: none; not run: {' '.join(STEPS)}" in proc.stderr
    assert [(r["step"], r["status"]) for r in rows(out)] == [(step, "skipped") for step in STEPS]
    assert "total budget of 0 s spent" in rows(out)[0]["result"]
