"""The conda environment file names the same packages as pyproject.toml."""
import re

import tomllib
import yaml

from tests.helpers import REPO

# PyPI name -> conda-forge/pytorch name
CONDA_NAMES = {"torch": "pytorch"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ ]", spec.strip(), maxsplit=1)[0].lower()


def _version(spec: str) -> str:
    return spec.strip()[len(_name(spec)):].replace("==", "=").strip()


def test_conda_env_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "cmhash.yaml").read_text())
    conda = {_name(d): _version(d) for d in env["dependencies"] if isinstance(d, str)} 
    conda.pop("python"), conda.pop("pip")
    wanted = {CONDA_NAMES.get(_name(d), _name(d)): _version(d) for d in project}
    assert conda == wanted
