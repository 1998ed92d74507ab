"""Every kind of bad value stops ``snakemake -n`` before any job, naming the key and what is
allowed (issue 16). Each case is a temporary config derived from config/test.yaml. One dry run
per kind the issue lists (above the maximum, below the minimum, wrong type, unknown choice, a
dataset name off the wildcard pattern, an embedded split larger than the generated rows, a split
larger than a published file); they share one copy of the workflow and run two at a time. Every
case, those included, is also checked in-process through ``load_and_check``, the same check the
workflow's start-up (common.smk) and ``cmhash validate-config`` run."""
import copy
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml

from tests.helpers import REPO

BASE = yaml.safe_load((REPO / "config/test.yaml").read_text())


def _method(name, **hp):
    def mutate(cfg, _):
        cfg["grid"]["methods"] = [name]
        cfg.setdefault("methods", {})[name] = {**cfg["methods"].get(name, {}), **hp}
    return mutate


def _rename_dataset(cfg, _):
    cfg["datasets"]["embedded.v2"] = cfg["datasets"].pop("embedded")
    cfg["grid"]["datasets"] = ["embedded.v2"]


def _split(cfg, _):
    cfg["datasets"]["embedded"]["split"].update(n_query=100, n_train=100)


def _ucch_file(cfg, tmp):
    folder = tmp / "ucch"
    folder.mkdir(exist_ok=True)
    scipy.io.savemat(folder / "mirflickr25k-lall.mat", {"LAll": np.zeros((50, 24), dtype=np.uint8)})
    cfg["datasets"]["mir"] = {"source": "mirflickr25k_ucch", "path": str(folder), "split": {"n_validation": 10}}


def _wikipedia_file(cfg, tmp):
    folder = tmp / "wiki"
    folder.mkdir(exist_ok=True)
    (folder / "trainset_txt_img_cat.list").write_text("".join(f"t{i}\ti{i}\t1\n" for i in range(5)))
    cfg["datasets"]["wiki"] = {"source": "wikipedia", "path": str(folder), "split": {"n_validation": 200}}


def _variant(cfg, _):
    cfg["methods"]["strict_nrch"] = {"variant_of": "nrch", "threshold": 2}
    cfg["grid"]["methods"] = ["baseline", "strict_nrch"]


CASES = {
    "above_maximum": (_method("nrch", **{"lambda": 1.5}),
                      "methods.nrch.lambda: 1.5 is above its maximum 1; allowed: a number in [0, 1]"),
    "below_minimum": (_method("baseline", weight_decay=-1),
                      "methods.baseline.weight_decay: -1 is below its minimum 0; allowed: a number >= 0"),
    "exclusive_minimum": (_method("baseline", lr=-1),
                          "methods.baseline.lr: -1 is not above its minimum 0; allowed: a number > 0"),
    "exclusive_maximum": (_method("ucch", momentum=1.0),
                          "methods.ucch.momentum: 1 is not below its maximum 1; allowed: a number in [0, 1)"),
    "wrong_type": (_method("baseline", epochs="four"),
                   "methods.baseline.epochs: 'four' is a string, expected an integer >= 1"),
    "number_read_as_text": (_method("baseline", lr="1e-3"),
                            "methods.baseline.lr: '1e-3' is a string, expected a number > 0 (YAML reads"),
    "unknown_choice": (_method("nrch", batching="sometimes"),
                       "methods.nrch.batching: unknown 'sometimes'; allowed: one of 'in_batch', 'subset'"),
    "list_entry": (_method("baseline", image_hidden=[32, 0]),
                   "methods.baseline.image_hidden: entry 1 0 is below its minimum 1"),
    "list_length": (_method("dcmh", lr_log10=[-1.5]),
                    "methods.dcmh.lr_log10: [-1.5] has 1 entries; allowed: a list of 2 numbers"),
    "multiple_of": (_method("dcmh", epochs=5), "methods.dcmh.epochs: 5 is not a multiple of 2"),
    "unknown_key": (_method("baseline", learning_rate=0.1), "methods.baseline.learning_rate: unknown hyper-parameter"),
    "variant_value": (_variant, "methods.strict_nrch.threshold: 2 is above its maximum 1"),
    "dataset_name": (_rename_dataset, "'embedded.v2' does not match '^[A-Za-z0-9_\\\\-]+$'"),
    "embedded_split": (_split, ("datasets.embedded.split: n_query (100) + n_train (100) = 200 exceed the 160 rows "
                                "generated (datasets.embedded.generate.n_images)")),
    "published_file_rows": (_ucch_file, ("datasets.mir.options: n_query (2000) + n_train (10000) = 12000 exceed the "
                                         "50 rows of")),
    "published_list_rows": (_wikipedia_file, ("datasets.wiki.split.n_validation: 200 must be below the 5 training "
                                              "pairs of")),
}


#: The kinds run through ``snakemake -n`` (a few seconds each); the others are variations of them.
DRY_RUN = ("above_maximum", "below_minimum", "wrong_type", "unknown_choice", "dataset_name", "embedded_split",
           "published_file_rows")


def write_case(kind, folder):
    cfg = copy.deepcopy(BASE)
    CASES[kind][0](cfg, folder)
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_value_fails_the_config_check(kind, tmp_path):
    from cmhash.config import load_and_check
    from cmhash.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_and_check(write_case(kind, tmp_path))
    expected = CASES[kind][1]
    if kind == "dataset_name":  # jsonschema's words, the key named by validate_schema
        expected = "config key 'datasets': 'embedded.v2' does not match"
    assert expected in str(info.value)


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("dryrun")
    for item in ("Snakefile", "workflow", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p))

    def run(kind):
        path = write_case(kind, work)
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", path.name],
                              cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(DRY_RUN, pool.map(run, DRY_RUN)))
    return results


@pytest.mark.parametrize("kind", DRY_RUN)
def test_bad_value_stops_the_dry_run_naming_key_and_allowed(dry_runs, kind):
    code, output = dry_runs[kind]
    assert code != 0
    assert CASES[kind][1] in output, output[-3000:]
    assert "Job stats" not in output  # stopped before the DAG: no job planned


def test_the_unchanged_config_dry_runs(tmp_path):
    work = tmp_path
    for item in ("Snakefile", "workflow", "envs", "config"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", "config/test.yaml"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_dataset_name_pattern_is_the_wildcard_constraint():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    smk = (REPO / "workflow/rules/common.smk").read_text()
    wildcard = re.search(r'dataset=r"([^"]+)"', smk).group(1)
    assert schema["properties"]["datasets"]["propertyNames"]["pattern"] == f"^{wildcard}$"
