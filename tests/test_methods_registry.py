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
        per_dataset = {"mirflickr25k": {"k": 20}, "nus-wide": {"k": 5}}

    monkeypatch.setitem(METHODS, "toy_for_test", Toy)
    hp, src = resolve_hparams("toy_for_test", "nus-wide", {"lr": 0.5})
    assert hp == {"epochs": 10, "lr": 0.5, "k": 5}
    assert src == {"epochs": "published", "lr": "config", "k": "published:nus-wide"}
    hp, src = resolve_hparams("toy_for_test", "wikipedia")
    assert hp["k"] == 20 and src["k"] == "borrowed:mirflickr25k"
    hp, src = resolve_hparams("toy_for_test", "embedded")  # the embedded set mirrors MIRFlickr
    assert src["k"] == "published:mirflickr25k"
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
