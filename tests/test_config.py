"""The config schema and semantic checks reject bad values with the key named."""
import copy

import pytest
import yaml

from cmhash.config import (
    cell_settings,
    cells,
    check_config,
    load_and_check,
    validate_schema,
)
from cmhash.errors import ConfigError
from tests.helpers import REPO

DEMO = REPO / "config" / "demo.yaml"


@pytest.fixture
def demo():
    return yaml.safe_load(DEMO.read_text())


def test_shipped_configs_are_valid():
    for path in sorted((REPO / "config").glob("*.yaml")):
        load_and_check(path)


def test_grid_expands_to_every_cell(demo):
    g = {"datasets": ["embedded"], "methods": ["baseline", "nrch"], "noise_models": ["nrch"],
         "noise_rates": [0.2, 0.5], "bits": [16, 64], "seeds": [0, 1], "protocols": ["sound", "paper"]}
    cfg = {**demo, "grid": g}
    all_cells = cells(cfg)
    assert len(all_cells) == 1 * 2 * 1 * 2 * 2 * 2 * 2 == len(set(all_cells))
    assert all_cells[0].run_dir.startswith("results/runs/embedded/baseline/nrch-0.2/bits16/seed0/")


def test_also_grids_take_missing_axes_from_the_grid_and_add_each_cell_once(demo):
    g = {"datasets": ["embedded"], "methods": ["baseline"], "noise_models": ["nrch"], "noise_rates": [0.2, 0.5],
         "bits": [64], "seeds": [0], "protocols": ["sound"],
         "also": [{"methods": ["dcgmh"], "noise_models": ["dcgmh"], "noise_rates": [0.4]},
                  {"methods": ["baseline"], "noise_rates": [0.5, 0.8]}]}
    cfg = {**demo, "grid": g}
    validate_schema(cfg)
    check_config(cfg)
    got = [(c.method, c.noise_model, c.rate) for c in cells(cfg)]
    assert got == [("baseline", "nrch", 0.2), ("baseline", "nrch", 0.5), ("dcgmh", "dcgmh", 0.4),
                   ("baseline", "nrch", 0.8)]
    assert all(c.bits == 64 and c.protocol == "sound" for c in cells(cfg))


def test_also_grids_are_checked_and_named_in_errors(demo):
    cfg = copy.deepcopy(demo)
    cfg["grid"]["also"] = [{"method": ["nrch"]}]
    with pytest.raises(ConfigError, match="'grid.also.0'"):
        validate_schema(cfg)
    cfg["grid"]["also"] = [{"methods": ["nrhc"]}]
    validate_schema(cfg)
    with pytest.raises(ConfigError, match=r"grid\.also\.0\.methods: unknown method 'nrhc'"):
        check_config(cfg)


@pytest.mark.parametrize("path, value, key", [
    (("grid", "noise_rates"), [0.5, 1.0], "grid.noise_rates.1"),
    (("grid", "noise_rates"), [-0.1], "grid.noise_rates.0"),
    (("grid", "bits"), [64, 48], "grid.bits.1"),
    (("grid", "protocols"), ["oracle"], "grid.protocols.0"),
    (("datasets", "embedded", "split", "n_query"), "many", "datasets.embedded.split.n_query"),
    (("grid", "typo_key"), [1], "grid"),
    (("datasets", "embedded", "standardize_features"), "yes", "datasets.embedded.standardize_features"),
])
def test_schema_rejects_bad_values(demo, path, value, key):
    cfg = copy.deepcopy(demo)
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_schema(cfg)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["grid"].update(methods=["nrhc"]), "grid.methods: unknown method 'nrhc'"),
    (lambda c: c["grid"].update(datasets=["nuswide"]), "grid.datasets: 'nuswide'"),
    (lambda c: c["grid"].update(noise_models=["pairflip"]), "grid.noise_models: unknown noise model 'pairflip'"),
    (lambda c: c["datasets"]["embedded"].update(source="flickr"), "datasets.embedded.source: unknown source 'flickr'"),
    (lambda c: c["methods"]["baseline"].update(learning_rate=0.1), "methods.baseline.learning_rate: unknown hyper-parameter"),
    (lambda c: c["methods"].update(scbch_cw={"variant_of": "scbhc"}), "methods.scbch_cw.variant_of: unknown method 'scbhc'"),
    (lambda c: c["methods"].update(nrch={"variant_of": "scbch"}), "methods.nrch: a variant cannot take the name"),
    (lambda c: c["methods"].update(scbch_cw={"alpha": 0.3}), "methods.scbch_cw: unknown method"),
    (lambda c: c["methods"].update(scbch_cw={"variant_of": "scbch", "alfa": 0.3}) or c["grid"]["methods"].append("scbch_cw"),
     "methods.scbch_cw.alfa: unknown hyper-parameter"),  # the key in the config: the variant's block
])
def test_semantic_checks_name_the_key(demo, mutate, message):
    cfg = copy.deepcopy(demo)
    mutate(cfg)
    validate_schema(cfg)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        check_config(cfg)


def test_cell_settings_are_what_training_reads_with_defaults():
    cfg = {"methods": {"nrch": {"lr": 1e-4}}, "datasets": {"wiki": {"standardize_features": True}, "mir": {}}}
    assert cell_settings(cfg, "nrch", "wiki") == {"methods": {"lr": 1e-4}, "standardize_features": True}
    assert cell_settings(cfg, "scbch", "mir") == {"methods": {}, "standardize_features": False}
    assert cell_settings({}, "nrch", "wiki") == {"methods": {}, "standardize_features": False}


def test_a_named_variant_is_a_grid_method_running_its_registered_method(demo):
    cfg = copy.deepcopy(demo)
    cfg["methods"]["scbch_code_weights"] = {"variant_of": "scbch", "alpha": 0.3, "beta": 0.7}
    cfg["grid"]["methods"].append("scbch_code_weights")
    check_config(cfg)
    assert {c.method for c in cells(cfg)} >= {"scbch", "scbch_code_weights"}
    chosen = cell_settings(cfg, "scbch_code_weights", "embedded")
    assert chosen["variant_of"] == "scbch" and chosen["methods"] == {"alpha": 0.3, "beta": 0.7}
    assert "variant_of" not in cell_settings(cfg, "scbch", "embedded")  # plain methods' params unchanged


def test_a_label_free_method_keeps_its_last_epoch_under_sound_whatever_selection_says(demo):
    from cmhash.methods import resolve_hparams
    from cmhash.methods.ucch import UCCH

    cfg = copy.deepcopy(demo)
    cfg["grid"]["methods"].append("ucch")
    cfg["methods"]["ucch"] = {"selection": "best"}  # its published paper selection (UCCH.py:208-235)
    check_config(cfg)
    hp, _ = resolve_hparams("ucch", "mirflickr25k", {"image_hidden": [8], "text_hidden": [8]})
    assert hp["selection"] == "best"
    assert UCCH(4, 4, 2, 8, hp, "sound").selection_mode() == "last"  # labels would come back through selection
    assert UCCH(4, 4, 2, 8, hp, "paper").selection_mode() == "best"


def test_a_validation_split_is_required_where_a_selection_scores_one(demo):
    cfg = copy.deepcopy(demo)
    cfg["datasets"]["embedded"].setdefault("split", {})["n_validation"] = 0
    with pytest.raises(ConfigError, match=r"datasets\.embedded\.split\.n_validation: .* under `sound`"):
        check_config(cfg)
    cfg["grid"]["protocols"] = ["paper"]
    check_config(cfg)  # the query-set selection of NRCH/SCBCH needs none
    cfg["grid"]["methods"] = ["dgcpn"]  # DGCPN's published selection scores a labelled validation split
    with pytest.raises(ConfigError, match=r"n_validation: dgcpn under `paper`"):
        check_config(cfg)
