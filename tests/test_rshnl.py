"""RSHNL: the robust loss, the centre and contrastive losses and the self-paced weights on hand-
computed inputs and against the official code's values, the published settings, the per-epoch
hook, a short run through the trainer, checkpoint resume and refused hyper-parameters.

Official values (``test_*_match_the_official_code``): the official ``losses.py`` of
perquisite/RSHNL @ 34de1461382db360a9dbaca9048ed653104c6887 was copied, outside this repository
(/tmp/rshnl_ref, never committed), and run with this project's interpreter (torch 2.x, CPU) on
the fixed float64 tensors ``U``, ``V``, ``W``, ``Y``, ``YM`` below. Edits to the official code:
none to ``losses.py`` itself (it has no device call; its one ``.cuda()`` is in a comment, :69).
The driver script added around it (a) builds the class probabilities as train_model.py:93-94 do,
``F.softmax(U.view([U.shape[0], -1]).mm(W.T), dim=1)``, with the ``.cuda()`` of :91 and of the
criterion (:25) dropped and ``W`` given directly instead of ``emb(torch.eye(C))``; (b) passes the
command-line options as a ``types.SimpleNamespace`` (alpha, lamda, loss_type='RSHNL', q,
self_paced, tp, linear, tau) in place of argparse; (c) calls ``SupConLoss(loss_type, temperature,
data_class=3, gamma)(U, V, P1, P2, labels, epoch, opt, None)`` and
``cross_modal_contrastive_ctriterion_q([U, V], tau, q)``, printing ``.item()`` and the returned
weights; (d) for the all-zero label row, backpropagates the official loss to ``U`` and prints
whether the gradient is finite. The printed numbers are pasted below.
"""
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, TrainView, get_method, resolve_hparams
from cmhash.methods.rshnl import (
    RSHNL,
    centre_loss,
    class_probabilities,
    contrastive_q_loss,
    label_probability,
    robust_q_loss,
    rshnl_objective,
    self_paced_regulariser,
    self_paced_weights,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

D = torch.float64
TINY = {"image_hidden": [32, 32], "text_hidden": [32, 32], "centre_hidden": [32, 32]}


def _unit(rows):
    x = torch.tensor(rows, dtype=D)
    return x / x.norm(dim=1, keepdim=True)


# The official driver's inputs (4 pairs, 3 bits, 3 classes; row 3 of Y is "mislabelled")
U = _unit([[0.9, -0.2, 0.4], [-0.5, 0.7, 0.1], [0.3, 0.3, -0.8], [0.6, 0.5, 0.2]])
V = _unit([[0.7, -0.4, 0.1], [-0.2, 0.9, -0.3], [0.1, -0.2, -0.9], [-0.3, 0.6, 0.5]])
W = _unit([[1.0, 0.2, 0.1], [-0.3, 1.0, 0.2], [0.1, -0.1, -1.0]])
Y = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=D)
YM = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=D)


def tiny_hp(family="mirflickr25k", **overrides):
    hp, _ = resolve_hparams("rshnl", family, {**TINY, **overrides})
    return hp


def build(seed=0, bits=8, protocol="paper", **overrides):
    torch.manual_seed(seed)
    return RSHNL(20, 12, 6, bits, tiny_hp(**overrides), protocol)


# -- (a) hand-computed ----------------------------------------------------------------------------
def test_robust_q_loss_hand_values():
    p = torch.tensor([1.0, 0.0, 0.5], dtype=D)
    # p = 1 -> 0; p = 0 -> (1 - q) / q + q = 99.01 at q = .01; p = .5, q = .5: (1 - sqrt .5) + .25
    out = robust_q_loss(p, 0.01)
    assert out[0].item() == 0.0 and out[1].item() == pytest.approx(99.01)
    assert robust_q_loss(p, 0.5)[2].item() == pytest.approx(1 - math.sqrt(0.5) + 0.25)
    assert torch.allclose(robust_q_loss(p, 1.0), 1 - p)  # q = 1: mean absolute error
    # q -> 0: cross entropy
    assert robust_q_loss(torch.tensor([0.3], dtype=D), 1e-6).item() == pytest.approx(-math.log(0.3), rel=1e-5)
    # p = 0 has the maximal value and a zero (not NaN) gradient
    x = torch.tensor([0.0, 0.4], dtype=D, requires_grad=True)
    robust_q_loss(x, 0.01).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[0].item() == pytest.approx(-0.01)  # only the q (1 - p) part


def test_class_probabilities_and_label_targets_hand_case():
    codes = torch.tensor([[1.0, 0.0]], dtype=D)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=D)
    P = class_probabilities(codes, centres)
    z = math.e + 1 + 1 / math.e
    assert P[0].tolist() == pytest.approx([math.e / z, 1 / z, 1 / (math.e * z)])
    y = torch.tensor([[1.0, 1.0, 0.0]], dtype=D)
    assert label_probability(P, y, "set").item() == pytest.approx((math.e + 1) / z)  # mass on the label set
    assert label_probability(P, y, "normalised").item() == pytest.approx((math.e + 1) / (2 * z))  # mean of the two
    assert label_probability(P, torch.zeros_like(y), "normalised").item() == 0.0  # empty row: 0, no 0/0
    with pytest.raises(ValueError, match="label target"):
        label_probability(P, y, "mean")


def test_centre_loss_hand_case():
    # one pair, q = 1 (MAE): l = (1 - p_u) + (1 - p_v)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D)
    u, v = torch.tensor([[1.0, 0.0]], dtype=D), torch.tensor([[0.0, 1.0]], dtype=D)
    y = torch.tensor([[1.0, 0.0]], dtype=D)
    pu, pv = math.e / (math.e + 1), 1 / (math.e + 1)
    assert centre_loss(u, v, centres, y, 1.0).item() == pytest.approx((1 - pu) + (1 - pv))
    assert centre_loss(u, v, centres, y, 1.0).item() == pytest.approx(1.0)


def test_contrastive_q_loss_hand_case():
    # u = v = the two unit axes: each of the 4 anchors sees its partner (dot 1) and two orthogonal
    # codes (dot 0), so p = e / (e + 2); q = 1 gives 2 * (1 - p) = 4 / (e + 2)
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D)
    assert contrastive_q_loss(u, u.clone(), tau=1.0, q=1.0).item() == pytest.approx(4 / (math.e + 2))
    # tau scales the similarities: p = e^2 / (e^2 + 2)
    assert contrastive_q_loss(u, u.clone(), tau=0.5, q=1.0).item() == pytest.approx(2 * (1 - math.e ** 2 / (math.e ** 2 + 2)))
    # one pair: the partner is the only other code, p = 1, loss 0
    assert contrastive_q_loss(u[:1], u[:1].clone(), 1.0, 0.01).item() == pytest.approx(0.0, abs=1e-12)


def test_self_paced_weights_and_regulariser_hand_values():
    losses = torch.tensor([0.0, 1.5, 3.0, 4.0], dtype=D, requires_grad=True)
    w = self_paced_weights(losses, 3.0, "linear")
    assert w.tolist() == [1.0, 0.5, 0.0, 0.0] and not w.requires_grad  # detached
    assert self_paced_weights(losses, 3.0, "hard").tolist() == [1.0, 1.0, 0.0, 0.0]
    assert self_paced_regulariser(w, 3.0, "linear").tolist() == pytest.approx([-1.5, -1.125, 0.0, 0.0])
    assert self_paced_regulariser(w, 3.0, "hard").tolist() == pytest.approx([-3.0, -1.5, 0.0, 0.0])
    with pytest.raises(ValueError, match="regulariser"):
        self_paced_weights(losses, 3.0, "soft")


def test_objective_combines_the_terms():
    per_row = centre_loss(U, V, W, Y, 0.01)
    chl = contrastive_q_loss(U, V, 1.0, 0.01)
    plain, parts = rshnl_objective(U, V, W, Y, q=0.01, tau=1.0, alpha=0.05, lambda_centre=2.0, gamma=3.0,
                                   self_paced=False)
    assert plain.item() == pytest.approx(2.0 * per_row.mean().item() + 0.05 * chl.item())
    assert parts["centre"] == pytest.approx(per_row.mean().item()) and "spl_weight_mean" not in parts
    weighted, parts = rshnl_objective(U, V, W, Y, q=0.01, tau=1.0, alpha=0.05, lambda_centre=1.0, gamma=3.0,
                                      self_paced=True)
    w = (1 - per_row / 3).clamp(min=0)
    assert weighted.item() == pytest.approx((w * per_row + 3 * (w ** 2 / 2 - w)).mean().item() + 0.05 * chl.item())
    assert parts["spl_zero_fraction"] == 0.25  # row 3 (mislabelled) has l >= gamma
    given = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=D)
    fixed, _ = rshnl_objective(U, V, W, Y, q=0.01, tau=1.0, alpha=0.0, lambda_centre=1.0, gamma=3.0,
                               self_paced=True, weight=given)
    assert fixed.item() == pytest.approx(((per_row[0] + per_row[2]) - 2 * 1.5).item() / 4)


def test_an_empty_label_row_has_a_finite_gradient():
    u = U.clone().requires_grad_()
    y = Y.clone()
    y[3] = 0  # what the published empty `asym` branch would leave
    per_row = centre_loss(u, V, W, y, 0.01)
    assert per_row[3].item() == pytest.approx(2 * (0.99 / 0.01 + 0.01))
    loss, _ = rshnl_objective(u, V, W, y, q=0.01, tau=1.0, alpha=0.05, lambda_centre=1.0, gamma=3.0, self_paced=False)
    loss.backward()
    assert torch.isfinite(u.grad).all()  # the official code gives NaN here (see below)


# -- (b) the official code's values -------------------------------------------------------------
OFFICIAL_P1 = [[0.623729003120, 0.180675829259, 0.195595167621], [0.167490056831, 0.639296007887, 0.193213935282],
               [0.281491046149, 0.219266280475, 0.499242673376], [0.508144676182, 0.323530691681, 0.168324632137]]
OFFICIAL_P2 = [[0.584160679213, 0.138407146676, 0.277432174111], [0.208546114643, 0.525179408667, 0.266274476690],
               [0.223878876526, 0.152439708684, 0.623681414790], [0.226869181533, 0.641793158752, 0.131337659715]]


def test_class_probabilities_match_the_official_code():
    assert torch.allclose(class_probabilities(U, W), torch.tensor(OFFICIAL_P1, dtype=D), atol=1e-11)
    assert torch.allclose(class_probabilities(V, W), torch.tensor(OFFICIAL_P2, dtype=D), atol=1e-11)


def test_contrastive_loss_matches_the_official_code():
    # official: cross_modal_contrastive_ctriterion_q([U, V], tau, q)
    assert contrastive_q_loss(U, V, 1.0, 0.01).item() == pytest.approx(2.7401735621582843, abs=1e-12)
    assert contrastive_q_loss(U, V, 0.5, 0.5).item() == pytest.approx(1.4118598674923368, abs=1e-12)


def test_centre_loss_matches_the_official_code():
    # official: tmp1 + tmp2 (losses.py:42-43, 54), q = .01
    expected = [1.0049142329489815, 1.085806319244325, 1.1603968288582778, 3.7548452243348156]
    assert centre_loss(U, V, W, Y, 0.01).tolist() == pytest.approx(expected, abs=1e-12)


# (name, gamma, epoch, labels, options) -> official SupConLoss value and returned weights
OFFICIAL_CASES = [
    ("warmup", 3.0, 4, Y, {}, 1.888499329454514, None),
    ("linear", 3.0, 5, Y, {}, -0.32251817575080194, [0.6650285890170062, 0.6380645602518917, 0.6132010570472408, 0.0]),
    ("linear_g2", 2.5, 5, Y, {}, -0.16447941557512452, [0.5980343068204074, 0.56567747230227, 0.5358412684566889, 0.0]),
    ("hard_g2", 2.5, 5, Y, {"regulariser": "hard"}, -0.9252119766291897, [1.0, 1.0, 1.0, 0.0]),
    ("off", 3.0, 9, Y, {"self_paced": False}, 1.888499329454514, None),
    ("multi_linear", 3.0, 5, YM, {}, -0.5986031449712708,
     [0.6650285890170062, 0.8256777734612877, 0.6132010570472408, 0.6794182673797987]),
    ("q05_tau05_lam2", 2.5, 7, Y, {"q": 0.5, "tau": 0.5, "lambda_centre": 2.0, "alpha": 0.3}, -0.36993984085515735,
     [0.6632056188161399, 0.6425960890476725, 0.6231072559045394, 0.1690041505851999]),
]


@pytest.mark.parametrize("name, gamma, epoch, labels, options, expected, weights", OFFICIAL_CASES,
                         ids=[c[0] for c in OFFICIAL_CASES])
def test_objective_matches_the_official_code(name, gamma, epoch, labels, options, expected, weights):
    o = {"q": 0.01, "tau": 1.0, "alpha": 0.05, "lambda_centre": 1.0, "self_paced": True, "regulariser": "linear",
         **options}
    active = o.pop("self_paced") and epoch >= 5  # official tp = 5
    loss, parts = rshnl_objective(U, V, W, labels, gamma=gamma, self_paced=active, **o)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    if weights is None:
        assert "spl_weight_mean" not in parts
    else:
        per_row = centre_loss(U, V, W, labels, o["q"])
        assert self_paced_weights(per_row, gamma, o["regulariser"]).tolist() == pytest.approx(weights, abs=1e-12)
        assert parts["spl_weight_mean"] == pytest.approx(float(np.mean(weights)), abs=1e-12)


def test_empty_row_value_matches_the_official_code():
    y = Y.clone()
    y[3] = 0
    loss, _ = rshnl_objective(U, V, W, y, q=0.01, tau=1.0, alpha=0.05, lambda_centre=1.0, gamma=3.0, self_paced=False)
    # official value 50.45478802337081 (its gradient to U is NaN: "grad finite False")
    assert loss.item() == pytest.approx(50.45478802337081, abs=1e-10)


# -- the method: settings, networks, hook -------------------------------------------------------
def test_published_defaults_and_per_dataset_values():
    assert get_method("rshnl") is RSHNL
    common = {"epochs": 150, "batch_size": 256, "eval_every": 1, "selection": "best", "lr": 1e-4, "weight_decay": 0.0,
              "lambda_centre": 1.0, "q": 0.01, "tau": 1.0, "warmup_epochs": 5, "self_paced": True,
              "regulariser": "linear", "spl_weights": "batch", "label_target": "set",
              "image_hidden": [4096, 4096], "text_hidden": [4096, 4096], "centre_hidden": [4096, 4096]}
    hp, src = resolve_hparams("rshnl", "wikipedia")
    assert {k: hp[k] for k in common} == common
    assert (hp["alpha"], hp["gamma"]) == (0.05, 3.0) and src["alpha"] == src["gamma"] == "published:wikipedia"
    for family in ("mirflickr25k", "nuswide21", "mscoco", "iaprtc12", None):  # no published value: the code's defaults
        hp, src = resolve_hparams("rshnl", family)
        assert (hp["alpha"], hp["gamma"]) == (0.1, 5.0) and src["alpha"] == "published"
    assert all(p.source for p in RSHNL.hyperparameters)
    assert RSHNL.paper_denominator == "skip" and RSHNL.reference == "perquisite/RSHNL @ 34de146"
    opt, sched = build().configure_optimizer()
    assert isinstance(opt, torch.optim.Adam) and sched is None
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["weight_decay"] == 0.0


def test_networks_follow_the_published_structure():
    torch.manual_seed(0)
    m = RSHNL(128, 10, 10, 64, {**RSHNL.defaults}, "paper")  # Wikipedia's dimensions, published widths
    for net, d in ((m.image_net.net, 128), (m.text_net.net, 10)):
        linear = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
        assert [(la.in_features, la.out_features) for la in linear] == [(d, 4096), (4096, 4096), (4096, 64)]
        assert linear[-1].bias is None and linear[0].bias is not None  # model.py:50, 75
        bound = 1 / math.sqrt(d)  # published quirk: the network's input width (model.py:51, 76)
        assert linear[-1].weight.abs().max().item() <= bound and linear[-1].weight.abs().max().item() > 0.9 * bound
    centre = [layer for layer in m.centre_net.net if isinstance(layer, torch.nn.Linear)]
    assert [(la.in_features, la.out_features) for la in centre] == [(10, 4096), (4096, 4096), (4096, 64)]
    assert centre[-1].bias is not None and centre[-1].weight.abs().max().item() <= 1 / math.sqrt(10)
    W_ = m.centres()
    assert W_.shape == (10, 64) and torch.allclose(W_.norm(dim=1), torch.ones(10), atol=1e-5)
    codes = m.encode(torch.randn(3, 128), torch.rand(3, 10))
    assert torch.allclose(codes["image"].norm(dim=1), torch.ones(3), atol=1e-5)


def test_every_network_is_trained():
    m = build()
    b = _batch()
    m.loss(b, 0)[0].backward()
    for net in (m.image_net, m.text_net, m.centre_net):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_candidates_are_the_models_after_each_epoch():
    m = build(epochs=4)
    assert [m.is_candidate(e) for e in range(5)] == [False, True, True, True, True]
    assert [build(epochs=6, eval_every=2).is_candidate(e) for e in range(7)] == [False, False, True, False, True,
                                                                               False, True]


def _batch(n=6, seed=0, weight=None):
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, 6)
    labels[torch.arange(n), torch.randint(0, 6, (n,), generator=g)] = 1.0
    return Batch(index=torch.arange(n), image=torch.randn(n, 20, generator=g), text=torch.randn(n, 12, generator=g),
                 labels=labels, weight=weight)


def test_weights_per_batch_or_per_epoch():
    b = _batch()
    w = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 0.25])
    batch_mode = build(warmup_epochs=2)
    warm, parts = batch_mode.loss(b, 1)
    assert "spl_weight_mean" not in parts  # warm-up: unweighted
    in_batch, parts = batch_mode.loss(b, 2)
    assert "spl_weight_mean" in parts
    ignored, _ = batch_mode.loss(Batch(b.index, b.image, b.text, b.labels, weight=w), 2)
    assert ignored.item() == in_batch.item()  # published: weights from the batch itself
    epoch_mode = build(warmup_epochs=2, spl_weights="epoch")
    used, parts = epoch_mode.loss(Batch(b.index, b.image, b.text, b.labels, weight=w), 2)
    assert parts["spl_weight_mean"] == pytest.approx(float(w.mean())) and used.item() != in_batch.item()
    off = build(warmup_epochs=2, self_paced=False)
    assert off.loss(b, 2)[0].item() == pytest.approx(warm.item()) and "spl_weight_mean" not in off.loss(b, 2)[1]


def _view(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, 6)
    labels[torch.arange(n), torch.randint(0, 6, (n,), generator=g)] = 1.0
    return TrainView(image=torch.randn(n, 20, generator=g), text=torch.randn(n, 12, generator=g), labels=labels)


def test_before_epoch_scores_rows_and_fixes_weights_in_epoch_mode():
    view = _view()
    m = build(warmup_epochs=2)
    sel = m.before_epoch(view, 0)
    difficulty = m.row_difficulty(view)
    codes = m.encode_all(view.image, view.text)
    with torch.no_grad():
        direct = centre_loss(codes["image"], codes["text"], m.centres(), view.labels, 0.01)
    assert torch.allclose(difficulty, direct) and torch.allclose(sel.clean_score, -direct)
    assert sel.weights is None and sel.kept is None and sel.extra["warmup"] == 1.0
    later = m.before_epoch(view, 2)
    assert later.weights is None and later.extra["warmup"] == 0.0  # batch mode: weights come from each batch
    assert later.extra["spl_start_weight_mean"] == pytest.approx(float((1 - direct / 5).clamp(min=0).mean()))
    assert build(warmup_epochs=2, row_scores=False).before_epoch(view, 3) is None
    fixed = build(warmup_epochs=2, spl_weights="epoch", row_scores=False)
    assert fixed.before_epoch(view, 1) is None
    sel = fixed.before_epoch(view, 2)
    assert torch.allclose(sel.weights, self_paced_weights(fixed.row_difficulty(view), 5.0))
    assert m.training  # the hook restores the mode


def test_state_dict_round_trip():
    a, b = build(seed=0), build(seed=3)
    view = _view()
    assert not torch.allclose(a.centres(), b.centres())
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.centres(), b.centres())
    assert torch.equal(a.before_epoch(view, 6).clean_score, b.before_epoch(view, 6).clean_score)
    batch = _batch()
    assert a.loss(batch, 6)[0].item() == b.loss(batch, 6)[0].item()


def test_bad_hyper_parameters_are_refused():
    for key, value in (("q", 0.0), ("q", 1.5), ("gamma", 0.0), ("tau", 0.0), ("alpha", -0.1),
                       ("regulariser", "soft"), ("spl_weights", "sometimes"), ("label_target", "mean"),
                       ("batch_size", 1), ("warmup_epochs", -1), ("centre_hidden", [0])):
        with pytest.raises(ConfigError, match=f"methods.rshnl.{key}"):
            build(**{key: value})
    with pytest.raises(ConfigError, match="methods.rshnl.gamma"):
        resolve_hparams("rshnl", "wikipedia", {"gamma": "3"})


# -- (c, d) through the trainer -------------------------------------------------------------------
def _settings(protocol="sound", checkpoint_every=0, **overrides):
    hp = tiny_hp(epochs=8, warmup_epochs=3, batch_size=32, lr=1e-3, **overrides)
    return TrainSettings(method="rshnl", hp=hp, bits=16, protocol=protocol, seed=0, device="cpu", progress=False,
                         checkpoint_every=checkpoint_every)


def _trainer(protocol="sound", checkpoint_path=None, checkpoint_every=0, **overrides):
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "sym", 0.4, seed=1)
    settings = _settings(protocol, checkpoint_every, **overrides)
    return ds, Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=checkpoint_path)


@pytest.mark.parametrize("protocol, spl_weights", [("sound", "batch"), ("paper", "epoch")])
def test_short_training_run_through_trainer(protocol, spl_weights):
    torch.set_num_threads(1)
    ds, trainer = _trainer(protocol, spl_weights=spl_weights)
    result = trainer.run()
    epochs = [r for r in result.history if "loss/total" in r]
    assert len(epochs) == 8
    for part in ("loss/centre", "loss/contrastive"):
        assert epochs[-1][part] < epochs[0][part]
    assert epochs[-1]["loss/total"] < epochs[0]["loss/total"]
    assert all("loss/spl_weight_mean" not in r for r in epochs[:3]) and "loss/spl_weight_mean" in epochs[3]
    for split, rows in (("query", ds.splits.query), ("database", ds.splits.database)):
        for modality in ("image", "text"):
            codes = result.codes[f"{split}_{modality}"]
            assert codes.shape == (rows.size, 16) and set(np.unique(codes)) <= {-1, 1}
    assert "select_map/i2t" not in result.history[0] and "select_map/i2t" in result.history[1]  # never the untrained
    assert result.history[-1]["epoch"] == 8 and "select_map/t2i" in result.history[-1]  # the final model is scored
    assert 1 <= result.selected_epoch <= 8
    assert all("select/auc" in r for r in epochs)  # rows scored from epoch 0 (diagnostics only during warm-up)
    assert epochs[-1]["select/auc"] > 0.6  # the centre loss separates corrupted rows on this learnable set
    if spl_weights == "epoch":
        assert all("select/weight_clean" not in r for r in epochs[:3])
        assert epochs[-1]["select/weight_clean"] > epochs[-1]["select/weight_noisy"]
    else:
        assert all("select/weight_clean" not in r for r in epochs)


def test_resume_gives_identical_results(tmp_path):
    torch.set_num_threads(1)
    _, full_trainer = _trainer(checkpoint_path=tmp_path / "a.pt", checkpoint_every=1)
    full = full_trainer.run()
    _, first = _trainer(checkpoint_path=tmp_path / "b.pt", checkpoint_every=1)
    original = first._save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(next_epoch, state, complete=False):
        original(next_epoch, state, complete)
        if next_epoch == 4:  # just after warm-up: the self-paced epochs run after the resume
            raise Stop

    first._save_checkpoint = save_then_stop
    with pytest.raises(Stop):
        first.run()
    _, resumed = _trainer(checkpoint_path=tmp_path / "b.pt", checkpoint_every=1)
    result = resumed.run()
    assert result.resumed_from == 4 and result.selected_epoch == full.selected_epoch
    for key in full.codes:
        assert np.array_equal(full.codes[key], result.codes[key])
    assert [r.get("loss/total") for r in result.history] == [r.get("loss/total") for r in full.history]
    assert [r.get("select/auc") for r in result.history] == [r.get("select/auc") for r in full.history]
