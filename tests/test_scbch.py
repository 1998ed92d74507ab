"""SCBCH: Jaccard soft pairs, CSCC weights (hand cases, blocked == dense), the BSCH loss on
hand-computed batches, the ablation switches, a short run through the trainer, state round trips."""
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, TrainView, get_method, resolve_hparams
from cmhash.methods.scbch import (
    CODE_ARGUMENT_WEIGHTS,
    SCBCH,
    bsch_loss,
    cscc_weights,
    label_jaccard,
    scbch_objective,
    sign_quantisation_loss,
    weighted_classification_loss,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

TINY = {"image_hidden": [32, 32], "text_hidden": [32]}
e = math.exp


def tiny_hp(**overrides):
    hp, _ = resolve_hparams("scbch", "mirflickr25k", {**TINY, **overrides})
    return hp


def build(seed=0, bits=8, **overrides):
    torch.manual_seed(seed)
    return SCBCH(20, 12, 6, bits, tiny_hp(**overrides), "paper")


# -- Jaccard soft pairs ----------------------------------------------------------------------
def test_label_jaccard_hand_case():
    y = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    R = label_jaccard(y, y)
    # |y0 & y1| = 1, union 2 -> 1/2; y0, y3 share 1 of 3 -> 1/3; y1, y3 share nothing -> 0.
    # The empty row 2 has 0 / (0 + 1e-8) = 0 everywhere, its diagonal included.
    expected = [[1.0, 0.5, 0.0, 1 / 3],
                [0.5, 1.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0],
                [1 / 3, 0.0, 0.0, 1.0]]
    assert R.tolist() == [pytest.approx(row, abs=1e-6) for row in expected]


# -- CSCC weights ----------------------------------------------------------------------------
U4 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
Y4 = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])


def test_cscc_weights_hand_case():
    # U = V, so the within-modality similarity is cos(U, U) with a zero diagonal:
    #   row 0: [0, 1, 0, .6]  -> neighbours 1 (1), 3 (.6): w = [.625, .375], p0 = [1, .375, 0]
    #   row 1: [1, 0, 0, .6]  -> neighbours 0, 3: p1 = [1, .375, 0]
    #   row 2: [0, 0, 0, .8]  -> neighbour 3 (w 1) and a zero (w 0): p2 = y3 = [1, 1, 0], cos 0
    #   row 3: [.6, .6, .8, 0] -> neighbours 2 (.8), 0 or 1 (.6; same label): w = [4/7, 3/7],
    #          p3 = [3/7, 0, 4/7], cos(y3, p3) = (3/7) / (sqrt 2 * 5/7) = 3 / (5 sqrt 2)
    res = cscc_weights(U4, U4, Y4, k=2, gamma=0.5)
    cos0 = 1 / math.sqrt(1 + 0.375**2)
    cos3 = 3 / (5 * math.sqrt(2))
    assert res.cosine.tolist() == pytest.approx([cos0, cos0, 0.0, cos3], abs=1e-6)
    assert res.weights.tolist() == pytest.approx([0.5 + 0.5 * cos0, 0.5 + 0.5 * cos0, 0.5, 0.5 + 0.5 * cos3], abs=1e-6)
    assert res.soft_labels[0].tolist() == pytest.approx([1.0, 0.375, 0.0], abs=1e-6)
    assert res.soft_labels[3].tolist() == pytest.approx([3 / 7, 0.0, 4 / 7], abs=1e-6)
    # gamma moves the floor: gamma = 0.2 -> 0.2 + 0.8 * cos.
    assert cscc_weights(U4, U4, Y4, k=2, gamma=0.2).weights[3].item() == pytest.approx(0.2 + 0.8 * cos3, abs=1e-6)


def test_cscc_within_averages_modalities_and_cross_uses_cos_u_v():
    U = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    V = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # within: (cos(U,U) + cos(V,V)) / 2, zero diagonal = [[0, 0, .9], [0, 0, .3], [.9, .3, 0]]:
    #   nearest 2, 2, 0 -> soft labels y2, y2, y0 -> cosines 1, 0, 1.
    assert cscc_weights(U, V, y, k=1).weights.tolist() == pytest.approx([1.0, 0.5, 1.0], abs=1e-6)
    # cross: cos(U, V), zero diagonal = [[0, 1, .6], [1, 0, .8], [0, 1, 0]]:
    #   nearest 1, 0, 1 -> soft labels y1, y0, y1 -> cosines 0, 0, 0.
    assert cscc_weights(U, V, y, k=1, similarity="cross").weights.tolist() == pytest.approx([0.5] * 3, abs=1e-6)


def test_cscc_blocked_equals_dense_and_stays_blocked(monkeypatch):
    g = torch.Generator().manual_seed(3)
    n = 53
    u, v = torch.randn(n, 16, generator=g), torch.randn(n, 16, generator=g)
    y = (torch.rand(n, 7, generator=g) < 0.3).float()
    for similarity in ("within", "cross"):
        dense = cscc_weights(u, v, y, k=6, similarity=similarity, block=n)
        for block in (1, 7, 50):
            blocked = cscc_weights(u, v, y, k=6, similarity=similarity, block=block)
            assert torch.allclose(blocked.weights, dense.weights, atol=1e-6)
            assert torch.allclose(blocked.soft_labels, dense.soft_labels, atol=1e-6)
    shapes = []
    real_topk = torch.topk

    def spy(x, *args, **kwargs):
        shapes.append(tuple(x.shape))
        return real_topk(x, *args, **kwargs)

    monkeypatch.setattr(torch, "topk", spy)
    cscc_weights(u, v, y, k=6, block=8)
    assert shapes and max(s[0] for s in shapes) == 8 and all(s[1] == n for s in shapes)  # 8 x N, never N x N


def test_cscc_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="methods.scbch.k"):
        cscc_weights(U4, U4, Y4, k=5)
    with pytest.raises(ConfigError, match="methods.scbch.cscc_similarity"):
        cscc_weights(U4, U4, Y4, k=2, similarity="both")


# -- BSCH, quantisation, classification -------------------------------------------------------
U2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
V2 = torch.tensor([[0.5, 0.75], [0.25, 1.0]])


def test_bsch_loss_hand_case():
    # S = u v^T = [[.5, .25], [.75, 1]]; margin 1/8, shift 1.
    # Rows (ref S_ii - 1/8 = .375, .875): both off-diagonals shifted: M_row = [[.5, -.75], [-.25, 1]].
    # Columns (ref .375, .875): S_10 = .75 kept, S_01 = .25 shifted: M_col = [[.5, -.75], [.75, 1]].
    # Labels share 1 of 3 classes: R = [[1, 1/3], [1/3, 1]], 1 - R = [[0, 2/3], [2/3, 0]].
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    R = label_jaccard(y, y)
    soft = (1 + e(-0.75 * 2 / 3) + e(-0.25 * 2 / 3) + 1 + 1 + e(-0.75 * 2 / 3) + e(0.75 * 2 / 3) + 1) / 4
    separation = (e(1 - 0.25) + e(1 - 0.75)) / 4  # pos = off-diagonal pairs (R - I > 0)
    alignment = (0.5 + 1.0) / 2
    loss, parts = bsch_loss(U2, V2, R, margin=0.125, shift=1.0, tau=1.0)
    assert loss.item() == pytest.approx(soft + separation - alignment, rel=1e-6)
    assert parts["soft_contrast"] == pytest.approx(soft, rel=1e-6)
    assert parts["separation"] == pytest.approx(separation, rel=1e-6)
    assert parts["alignment"] == pytest.approx(alignment, rel=1e-6)
    # tau = 0.5: tau * exp(M / tau * (1 - R)); the other terms do not involve tau.
    soft_half = 0.5 * (1 + e(-1.0) + e(-1 / 3) + 1 + 1 + e(-1.0) + e(1.0) + 1) / 4
    assert bsch_loss(U2, V2, R, 0.125, 1.0, tau=0.5)[0].item() == pytest.approx(
        soft_half + separation - alignment, rel=1e-6)


def test_bsch_loss_clamps_diagonal_and_handles_unlabelled_rows():
    # Unlabelled rows: R = 0 everywhere (diagonal too), no positive pairs.
    u = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    S_expected = [[-0.5, -0.25], [0.75, 1.0]]
    assert (u @ V2.T).tolist() == S_expected
    # Rows (ref -.625, .875): S_01 kept, S_10 shifted to -.25; diagonal -.5 clamped to 0.
    # Columns (ref -.625, .875): S_10 kept, S_01 shifted to -1.25; diagonal clamped to 0.
    R = label_jaccard(torch.zeros(2, 3), torch.zeros(2, 3))
    soft = (e(0) + e(-0.25) + e(-0.25) + e(1) + e(0) + e(-1.25) + e(0.75) + e(1)) / 4
    loss, parts = bsch_loss(u, V2, R, margin=0.125, shift=1.0)
    assert parts["separation"] == 0.0
    assert loss.item() == pytest.approx(soft - (-0.5 + 1.0) / 2, rel=1e-6)


def test_sign_quantisation_and_weighted_classification_hand_cases():
    u = torch.tensor([[0.5, -0.5]])
    v = torch.tensor([[0.8, -0.6]])
    assert sign_quantisation_loss(u, v).item() == pytest.approx(0.5 + (0.2 + 0.4) / 2)
    labels = torch.tensor([[1.0], [0.0]])
    lu = torch.tensor([[math.log(3.0)], [0.0]])  # p_u = [.75, .5]
    lv = torch.zeros(2, 1)  # p_v = .5
    per = [(-math.log(0.75) + math.log(2)) / 2, math.log(2)]
    assert weighted_classification_loss(lu, lv, labels).item() == pytest.approx(sum(per) / 2, rel=1e-6)
    # Weighted: divided by the batch size (2), not by the sum of the weights, as published.
    w = torch.tensor([1.0, 0.5])
    assert weighted_classification_loss(lu, lv, labels, w).item() == pytest.approx((per[0] + 0.5 * per[1]) / 2, rel=1e-6)


def test_objective_combines_alpha_beta_and_classification():
    g = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    v = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    y = (torch.rand(6, 4, generator=g) < 0.4).float()
    Wu, Wv = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    kw = {"alpha": 0.7, "beta": 0.3, "lambda_class": 1.0, "margin": 0.15, "shift": 0.8, "tau": 1.0}
    total, parts = scbch_objective(u, v, y, Wu, Wv, None, **kw)
    b, _ = bsch_loss(u, v, label_jaccard(y, y), 0.15, 0.8, 1.0)
    q = sign_quantisation_loss(u, v)
    c = weighted_classification_loss(u @ Wu, v @ Wv, y)
    assert total.item() == pytest.approx(0.7 * b.item() + 0.3 * q.item() + c.item(), rel=1e-6)
    assert parts["bsch"] == pytest.approx(b.item()) and parts["classification"] == pytest.approx(c.item())
    no_contrast, parts = scbch_objective(u, v, y, Wu, Wv, None, **kw, contrastive=False)
    assert no_contrast.item() == pytest.approx(0.3 * q.item() + c.item(), rel=1e-6) and "bsch" not in parts


# -- the method: defaults, switches, hook ------------------------------------------------------
def test_published_defaults_per_dataset():
    assert get_method("scbch") is SCBCH
    expected = {"lr": 1e-4, "weight_decay": 1e-5, "batch_size": 128, "epochs": 50, "warmup_epochs": 5, "tau": 1.0,
                "gamma": 0.5, "alpha": 0.7, "beta": 0.3, "lambda_class": 1.0, "eval_every": 1, "selection": "best",
                "bsch_start": "code", "cscc_similarity": "within", "cscc": True, "bsch": True,
                "image_hidden": [8192, 8192], "text_hidden": [8192]}
    published = {"nuswide21": (20, 0.2, 1.0), "mirflickr25k": (20, 0.15, 0.8), "mscoco": (20, 0.3, 1.1),
                 "iaprtc12": (20, 0.3, 1.2)}
    for dataset, (k, margin, shift) in published.items():
        hp, src = resolve_hparams("scbch", dataset)
        assert {key: hp[key] for key in expected} == expected
        assert (hp["k"], hp["margin"], hp["shift"]) == (k, margin, shift)
        assert src["margin"] == f"published:{dataset}"
    hp, src = resolve_hparams("scbch", "wikipedia")
    assert (hp["margin"], hp["shift"]) == (0.15, 0.8) and src["margin"] == "borrowed:mirflickr25k"
    assert CODE_ARGUMENT_WEIGHTS == {"alpha": 0.3, "beta": 0.7}
    opt, sched = build().configure_optimizer()
    assert isinstance(opt, torch.optim.Adam) and sched is None
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["weight_decay"] == 1e-5


def test_classifiers_orthogonal_init_and_trained_with_encoders():
    m = build(bits=8)  # W: 8 bits x 6 classes, orthonormal columns
    assert m.W_u.shape == (8, 6) and torch.allclose(m.W_u.T @ m.W_u, torch.eye(6), atol=1e-5)
    assert torch.allclose(m.W_v.T @ m.W_v, torch.eye(6), atol=1e-5)
    image, text = torch.randn(5, 20), torch.randn(5, 12)
    labels = (torch.rand(5, 6) < 0.4).float()
    m.hp.update(bsch=False, beta=0.0)  # classification only: it must reach the encoders (no detach)
    m.loss(Batch(torch.arange(5), image, text, labels), 0)[0].backward()
    assert m.W_u.grad.abs().sum() > 0 and m.W_v.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.image_net.parameters())


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="methods.scbch.bsch_start"):
        build(bsch_start="later")
    with pytest.raises(ConfigError, match="methods.scbch.cscc_similarity"):
        build(cscc_similarity="both")
    with pytest.raises(ConfigError, match="methods.scbch.gamma"):
        build(gamma=1.5)


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(index=torch.arange(n), image=torch.randn(n, 20, generator=g), text=torch.randn(n, 12, generator=g),
                 labels=(torch.rand(n, 6, generator=g) < 0.4).float())


def test_bsch_switches_and_start():
    b = _batch()
    code = build()
    assert "bsch" in code.loss(b, 0)[1]  # code: BSCH from epoch 0
    late = build(bsch_start="paper", warmup_epochs=3)
    assert "bsch" not in late.loss(b, 2)[1] and "bsch" in late.loss(b, 3)[1]  # paper: with CSCC after warm-up
    off = build(bsch=False)
    assert all("bsch" not in off.loss(b, epoch)[1] for epoch in (0, 10))
    full, parts = code.loss(b, 0)
    reduced, _ = off.loss(b, 0)  # same seed -> same networks
    assert full.item() - reduced.item() == pytest.approx(0.7 * parts["bsch"], rel=1e-5)


def test_batch_weight_scales_only_the_classification_term():
    m = build()
    b = _batch()
    plain, p_plain = m.loss(b, 7)
    w = torch.tensor([1.0, 0.5, 0.5, 1.0, 0.75, 0.5])
    weighted, p_w = m.loss(Batch(b.index, b.image, b.text, b.labels, weight=w), 7)
    assert p_w["bsch"] == pytest.approx(p_plain["bsch"]) and p_w["quantisation"] == pytest.approx(p_plain["quantisation"])
    assert p_w["classification"] < p_plain["classification"]
    assert plain.item() - weighted.item() == pytest.approx(p_plain["classification"] - p_w["classification"], rel=1e-5)


def _view(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TrainView(image=torch.randn(n, 20, generator=g), text=torch.randn(n, 12, generator=g),
                     labels=(torch.rand(n, 6, generator=g) < 0.3).float())


def test_before_epoch_warm_up_cscc_and_ablation():
    m = build(warmup_epochs=2, k=5)
    view = _view()
    assert m.before_epoch(view, 0) is None and m.before_epoch(view, 1) is None  # warm-up: all weights 1
    sel = m.before_epoch(view, 2)
    codes = m.encode_all(view.image, view.text)
    direct = cscc_weights(codes["image"], codes["text"], view.labels, k=5)
    assert torch.allclose(sel.weights, direct.weights) and sel.clean_score is sel.weights
    assert sel.kept is None and sel.extra["cscc_weight_mean"] == pytest.approx(float(direct.weights.mean()))
    assert float(sel.weights.min()) >= 0.0 and float(sel.weights.max()) <= 1.0 + 1e-6
    cross = build(warmup_epochs=2, k=5, cscc_similarity="cross").before_epoch(view, 2)
    assert not torch.allclose(cross.weights, sel.weights)
    assert build(warmup_epochs=2, k=5, cscc=False).before_epoch(view, 2) is None  # ablation: weights 1


def test_state_dict_round_trip():
    a, b = build(seed=0, k=5, warmup_epochs=0), build(seed=5, k=5, warmup_epochs=0)
    assert {"W_u", "W_v"} <= set(a.state_dict())
    view = _view()
    assert not torch.allclose(a.before_epoch(view, 0).weights, b.before_epoch(view, 0).weights)
    b.load_state_dict(a.state_dict())
    ca, cb = a.encode_all(view.image, view.text), b.encode_all(view.image, view.text)
    assert all(torch.equal(ca[key], cb[key]) for key in ca)
    assert torch.equal(a.before_epoch(view, 0).weights, b.before_epoch(view, 0).weights)
    batch = _batch()
    assert a.loss(batch, 0)[0].item() == b.loss(batch, 0)[0].item()


# -- through the trainer ---------------------------------------------------------------------
def test_short_training_run_through_trainer():
    torch.set_num_threads(1)
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    hp = tiny_hp(epochs=8, warmup_epochs=3, k=5, batch_size=32, lr=3e-3)
    settings = TrainSettings(method="scbch", hp=hp, bits=16, protocol="sound", seed=0, device="cpu", progress=False,
                             checkpoint_every=0)
    result = Trainer(ds, noise.noisy, noise.corrupted, settings).run()
    losses = [r["loss/total"] for r in result.history if "loss/total" in r]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert result.codes["query_image"].shape == (ds.splits.query.size, 16)
    assert result.codes["database_text"].shape == (ds.splits.database.size, 16)
    assert set(np.unique(result.codes["query_text"])) <= {-1, 1}
    assert all("select/auc" not in r for r in result.history[:3])  # warm-up: no weights, no diagnostics
    later = result.history[7]
    assert {"select/auc", "select/weight_clean", "select/weight_noisy", "select/cscc_weight_mean"} <= set(later)
    # The CSCC weights separate corrupted from clean rows on this learnable set.
    assert later["select/weight_clean"] > later["select/weight_noisy"] and later["select/auc"] > 0.6
    assert all(f"select_map/{d}" in r for r in result.history for d in ("i2t", "t2i"))  # evaluated every epoch
