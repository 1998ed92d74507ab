"""Declared hyper-parameters (issue 16): one declaration per method, read by the resolution, the
config check, the method itself, the README tables and ``validate-config --show``."""
import json
from pathlib import Path

import pytest

from cmhash.errors import ConfigError
from cmhash.families import FAMILIES
from cmhash.methods import METHODS, get_method, resolve_hparams
from cmhash.methods.hparams import HParam, check_value

SNAPSHOT = Path(__file__).parent / "data" / "hparams_snapshot.json"
BUILTIN = ("baseline", "dcgmh", "dcmh", "dgcpn", "djsrh", "nrch", "scbch", "ucch")


def test_resolved_values_bit_identical_to_the_snapshot_before_the_declarations():
    """Every method x family resolves to exactly the values (type and repr) and provenance it
    resolved to before the declarative rewrite (tests/data/hparams_snapshot.json)."""
    snapshot = json.loads(SNAPSHOT.read_text())
    now = {}
    for method in BUILTIN:
        for family in (None, *FAMILIES):
            hp, src = resolve_hparams(method, family)
            now[f"{method}/{family}"] = {k: [repr(v), src[k]] for k, v in hp.items()}
    assert now == snapshot


@pytest.mark.parametrize("method", BUILTIN)
def test_every_builtin_hyper_parameter_is_declared_with_a_source(method):
    cls = get_method(method)
    assert [p.name for p in cls.hyperparameters] == list(cls.defaults)
    for p in cls.hyperparameters:
        assert p.kind != "any" and p.source, (method, p.name)
        assert not p.per_family or p.family_source or p.source


def test_readme_generated_sections_are_current():
    """README.md's hyper-parameter tables and "Adding a method" example are generated from the
    declarations and tests/plugin_example (python scripts/render_readme.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_readme", Path(__file__).parents[1] / "scripts" /
                                                  "render_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert module.render(readme, module.sections()) == readme, "run: python scripts/render_readme.py"
    for method in BUILTIN:
        assert f"### `{method}`" in readme


@pytest.mark.parametrize("config", sorted(p.name for p in (Path(__file__).parents[1] / "config").glob("*.yaml")))
def test_validate_config_show_lists_every_method_with_provenance(config, capsys):
    from cmhash.cli import main
    from cmhash.config import grids, load_config

    path = Path(__file__).parents[1] / "config" / config
    assert main(["validate-config", "--show", str(path)]) == 0
    out = capsys.readouterr().out
    cfg = load_config(path)
    for _, grid in grids(cfg):
        for method in grid["methods"]:
            assert f"methods.{method}" in out
    assert "published" in out


def test_messages_name_the_key_and_what_is_allowed():
    lam = next(p for p in get_method("nrch").hyperparameters if p.name == "lambda")
    with pytest.raises(ConfigError, match=r"^methods\.nrch\.lambda: 1\.5 is above its maximum 1; allowed: a number in \[0, 1\]$"):
        check_value(lam, 1.5, "methods.nrch.lambda")
    with pytest.raises(ConfigError, match="is a boolean, expected a number"):
        check_value(lam, True, "methods.nrch.lambda")
    with pytest.raises(ConfigError, match="not a finite number"):
        check_value(lam, float("nan"), "methods.nrch.lambda")
    quirk = next(p for p in get_method("ucch").hyperparameters if p.name == "drop_last")
    check_value(quirk, None, "k")
    with pytest.raises(ConfigError, match="expected true or false or null"):
        check_value(quirk, "yes", "methods.ucch.drop_last")


def test_a_method_checks_its_hp_when_built():
    cls = get_method("baseline")
    with pytest.raises(ConfigError, match=r"methods\.baseline\.gamma: -1 is below its minimum 0"):
        cls(8, 8, 3, 16, {**cls.defaults, "gamma": -1}, "sound")
    with pytest.raises(ConfigError, match=r"methods\.baseline: hyper-parameters \['eta'\] missing"):
        cls(8, 8, 3, 16, {k: v for k, v in cls.defaults.items() if k != "eta"}, "sound")


def test_declarations_reject_their_own_bad_published_values():
    with pytest.raises(ConfigError, match="above its maximum"):
        HParam("x", 2.0, "float", "here", maximum=1)
    with pytest.raises(ValueError, match="not benchmark families"):
        HParam("x", 1, "int", "here", per_family={"nus-wide": 2})


def test_undeclared_class_still_resolves(monkeypatch):
    from cmhash.methods.base import HashingMethod

    class Legacy(HashingMethod):
        name = "legacy_for_test"
        defaults = {"epochs": 1, "lr": 0.1}  # noqa: RUF012 (a legacy class, as written before declarations)

    monkeypatch.setitem(METHODS, "legacy_for_test", Legacy)
    assert [p.kind for p in Legacy.hyperparameters] == ["any", "any"]
    assert resolve_hparams("legacy_for_test", None, {"lr": "anything"})[0]["lr"] == "anything"
