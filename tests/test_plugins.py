"""Methods from other packages (issue 16): the entry-point group ``cmhash.methods``.

The plugin is the README's own example (tests/plugin_example/): the test writes it out as an
installed distribution (a ``.dist-info`` folder with ``METADATA`` and ``entry_points.txt`` beside
the module) on PYTHONPATH, and checks that ``validate-config`` finds it, that one tiny cell trains,
evaluates and reports through the workflow, and that broken entry points name themselves without
breaking the built-in methods."""
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cmhash.errors import ConfigError
from cmhash.methods import METHODS, PLUGIN_ERRORS, get_method, load_plugins
from tests.helpers import REPO

EXAMPLE = Path(__file__).parent / "plugin_example"


def make_distribution(folder: Path, entry_points: str, modules: dict[str, str], name: str = "toyhash-plugin") -> Path:
    """An installed distribution in ``folder``: ``<name>-0.1.dist-info/{METADATA, entry_points.txt}``
    and the ``modules`` (file name -> source) beside it; ``folder`` goes on PYTHONPATH."""
    info = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for file, text in modules.items():
        (folder / file).write_text(text)
    return folder


def example_distribution(folder: Path) -> Path:
    return make_distribution(folder, (EXAMPLE / "entry_points.txt").read_text(),
                             {"toy_hashing.py": (EXAMPLE / "toy_hashing.py").read_text()})


def run_env(plugin_dir: Path) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cmhash.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_example_matches_its_entry_point_and_pyproject():
    """The README shows pyproject.toml's entry point; the test installs entry_points.txt: the same line."""
    assert "toyhash = toy_hashing:ToyHashing" in (EXAMPLE / "entry_points.txt").read_text()
    assert 'toyhash = "toy_hashing:ToyHashing"' in (EXAMPLE / "pyproject.toml").read_text()


def test_validate_config_finds_the_plugin_and_shows_its_hyper_parameters(tmp_path):
    plugin = example_distribution(tmp_path / "site")
    shutil.copy(EXAMPLE / "config.yaml", tmp_path / "config.yaml")
    proc = cli(["validate-config", "--show", "config.yaml"], run_env(plugin), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "config.yaml: valid; 1 cells" in proc.stdout
    assert "methods.toyhash on embedded" in proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "config" in lines["quantisation"] and "published" in lines["lr"]
    # its declaration is checked like a built-in's
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["methods"]["toyhash"]["quantisation"] = 1.5
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = cli(["validate-config", "bad.yaml"], run_env(plugin), tmp_path)
    assert proc.returncode == 2
    assert "methods.toyhash.quantisation: 1.5 is above its maximum 1" in proc.stderr


BROKEN = {
    "import_error": ("broken_import = no_such_module_for_cmhash:Method", "cannot be imported"),
    "missing_name": ("missing_name = toy_hashing:NoSuchClass", "has no attribute 'NoSuchClass'"),
    "wrong_base": ("wrong_base = toy_hashing:torch", "not a subclass of cmhash.methods.HashingMethod"),
    "builtin_name": ("nrch = toy_hashing:ToyHashing", "already registered"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_entry_point_is_named_and_leaves_the_builtins_alone(kind, monkeypatch, tmp_path, caplog):
    line, expected = BROKEN[kind]
    name, _, value = (part.strip() for part in line.partition("="))
    (tmp_path / "toy_hashing.py").write_text((EXAMPLE / "toy_hashing.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("cmhash.methods.registry.METHODS", dict(METHODS))
    monkeypatch.setattr("cmhash.methods.registry.PLUGIN_ERRORS", {})
    from cmhash.methods import registry

    load_plugins([EntryPoint(name, value, "cmhash.methods")])
    assert name in registry.PLUGIN_ERRORS and expected in registry.PLUGIN_ERRORS[name]
    assert f"entry point '{name} = {value}'" in registry.PLUGIN_ERRORS[name]
    assert expected in caplog.text  # the warning at load
    assert registry.METHODS["nrch"].__module__ == "cmhash.methods.nrch"  # built-ins untouched
    if kind != "builtin_name":
        with pytest.raises(ConfigError, match=f"entry point '{name} = "):
            registry.get_method(name)
    assert get_method("baseline") is METHODS["baseline"]
    assert not PLUGIN_ERRORS or name not in PLUGIN_ERRORS  # the real registry was not touched


def test_broken_plugins_warn_and_fail_only_the_configs_that_use_them(tmp_path):
    lines = "[cmhash.methods]\n" + "".join(BROKEN[k][0] + "\n" for k in ("import_error", "missing_name", "wrong_base"))
    plugin = make_distribution(tmp_path / "site", lines, {"toy_hashing.py": (EXAMPLE / "toy_hashing.py").read_text()},
                               name="broken-plugin")
    env = run_env(plugin)
    ok = cli(["validate-config", str(REPO / "config/test.yaml")], env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    for key in ("broken_import", "missing_name", "wrong_base"):
        assert f"entry point '{key} = " in ok.stderr  # one warning each, naming it
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    cfg["grid"]["methods"] = ["baseline", "missing_name"]
    (tmp_path / "uses.yaml").write_text(yaml.safe_dump(cfg))
    bad = cli(["validate-config", "uses.yaml"], env, tmp_path)
    assert bad.returncode == 2
    assert ("grid.methods: method 'missing_name' from entry point 'missing_name = toy_hashing:NoSuchClass' "
            "(group cmhash.methods, distribution broken-plugin) cannot be used") in bad.stderr


@pytest.mark.integration
def test_a_plugin_cell_trains_evaluates_and_reports_through_the_workflow(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for item in ("Snakefile", "workflow", "envs", "config"):  # config/: the report's published table
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    shutil.copy(EXAMPLE / "config.yaml", work / "config.yaml")
    plugin = example_distribution(tmp_path / "site")
    env = run_env(plugin)
    # PYTHONPATH carries the plugin into every job (and this checkout's src, as the copy has none)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config.yaml"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    metrics = json.loads(next(work.glob("results/runs/embedded/toyhash/**/metrics.json")).read_text())
    assert set(metrics["directions"]) == {"i2t", "t2i"}
    assert all(0 < d["map"] <= 1 for d in metrics["directions"].values())
    resolved = json.loads(next(work.glob("results/runs/embedded/toyhash/**/config.json")).read_text())
    assert resolved["hparams"]["quantisation"] == 0.2 and resolved["hparam_source"]["quantisation"] == "config"
    results = pd.read_csv(work / "results/report/results.csv")
    assert "toyhash" in set(results["method"])
    assert "toyhash" in (work / "results/report/tables.tex").read_text()
