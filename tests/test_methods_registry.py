"""Method registry, hyper-parameter resolution and the baseline's loss."""
import math

import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import METHODS, get_method, resolve_hparams
from cmhash.methods.baseline import pairwise_likelihood_loss, pairwise_similarity


def test_baseline_registered_and_unknown_named():
    assert get_method("baseline") is METHODS["baseline"]
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        get_method("nope")


def test_resolution_order_and_borrowing(monkeypatch):
    from cmhash.methods.base import HashingMethod

    class Toy(HashingMethod):
        name = "toy_for_test"
        defaults = {"epochs": 10, "lr": 0.1, "k": 1}
        per_dataset = {"mirflickr25k": {"k": 20}, "nuswide21": {"k": 5}}

    monkeypatch.setitem(METHODS, "toy_for_test", Toy)
    hp, src = resolve_hparams("toy_for_test", "nuswide21", {"lr": 0.5})
    assert hp == {"epochs": 10, "lr": 0.5, "k": 5}
    assert src == {"epochs": "published", "lr": "config", "k": "published:nuswide21"}
    hp, src = resolve_hparams("toy_for_test", "wikipedia")
    assert hp["k"] == 20 and src["k"] == "borrowed:mirflickr25k"
    hp, src = resolve_hparams("toy_for_test", None)  # the embedded set: no family, MIRFlickr borrowed
    assert src["k"] == "borrowed:mirflickr25k"
    with pytest.raises(ConfigError, match="nus-wide"):
        resolve_hparams("toy_for_test", "nus-wide")  # a dataset name is not a family
    with pytest.raises(ConfigError, match="methods.toy_for_test.lrr"):
        resolve_hparams("toy_for_test", "wikipedia", {"lrr": 1})


def test_pairwise_likelihood_hand_computed():
    f = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    g = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])
    s = pairwise_similarity(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert s.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    # theta = 0.5 f g^T = [[1, 0], [0, -1]]
    expected = (math.log1p(math.e) - 1 + math.log(2) + math.log(2) + math.log1p(math.exp(-1)) + 1) / 4
    assert pairwise_likelihood_loss(f, g, s).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("source", sorted(__import__("cmhash.data", fromlist=["SOURCES"]).SOURCES))
def test_family_comes_from_the_source_never_the_dataset_name(source):
    """Under any dataset name, a source's cells take its family's published values, or borrow
    MIRFlickr's (or the method's ``fallback_family``'s) where the method publishes none for it
    (issue 13, item 3). A method that publishes no fallback value for a key (RSHNL publishes only
    Wikipedia) keeps its default there."""
    from cmhash.config import check_config  # noqa: F401  (the config check resolves the same way)
    from cmhash.data import SOURCES, source_family

    family = source_family(source)
    assert family == SOURCES[source].family
    for method, cls in METHODS.items():
        if not cls.per_dataset:
            continue
        _, src = resolve_hparams(method, family)
        per_dataset_keys = set().union(*cls.per_dataset.values()) or set()
        fallback = cls.per_dataset.get(cls.fallback_family, {})
        for k in per_dataset_keys:
            if family in cls.per_dataset:
                expected = f"published:{family}" if k in cls.per_dataset[family] else "published"
            else:
                expected = f"borrowed:{cls.fallback_family}" if k in fallback else "published"
            assert src[k] == expected, (method, source, k)


def test_training_cell_resolves_by_source_family(tmp_path):
    """A dataset named like another benchmark (``coco`` holding NUS-WIDE, ``nuswide_tc21``
    holding the embedded set) takes its source's values, not its name's."""
    from cmhash.data import source_family

    assert source_family("embedded") is None
    assert source_family("nuswide_tc21_ucch") == "nuswide21"
    hp, src = resolve_hparams("scbch", source_family("nuswide_tc21_ucch"))
    assert hp["margin"] == 0.2 and src["margin"] == "published:nuswide21"
    hp, src = resolve_hparams("dcgmh", source_family("mscoco_dcgmh"))
    assert hp["warmup"] == 30 and src["warmup"] == "published:mscoco"
    hp, src = resolve_hparams("scbch", source_family("embedded"))
    assert hp["margin"] == 0.15 and src["margin"] == "borrowed:mirflickr25k"
