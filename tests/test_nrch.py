"""NRCH: the masked contrastive pieces on hand-computed cases, the separator, the classifier
term's gradients, a short training run through the trainer, and state round trips."""
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, TrainView, get_method, resolve_hparams
from cmhash.methods.contrastive import (
    clamp_diagonal,
    label_overlap,
    masked_similarity,
    quantisation_loss,
    rch_direction_loss,
    rch_loss,
)
from cmhash.methods.encoders import HashEncoder, mlp
from cmhash.methods.nrch import (
    NRCH,
    classifier_loss,
    fit_noise_separator,
    per_sample_label_loss,
    threshold_at,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

TINY = {"image_hidden": [32, 32], "text_hidden": [32]}


def tiny_hp(**overrides):
    hp, _ = resolve_hparams("nrch", "mirflickr25k", {**TINY, **overrides})
    return hp


def build(seed=0, bits=8, **overrides):
    torch.manual_seed(seed)
    return NRCH(20, 12, 6, bits, tiny_hp(**overrides), "paper")


# -- contrastive pieces -------------------------------------------------------------------
S3 = torch.tensor([[0.5, 0.5, -0.25],
                   [0.0, 0.75, 0.75],
                   [1.0, -0.5, -0.25]])


def test_masked_similarity_hand_case():
    # Rows (reference S_ii - 0.25): row 0 -> 0.25, row 1 -> 0.5, row 2 -> -0.5 (ties kept).
    assert masked_similarity(S3, 0.25, 1.0, dim=1).tolist() == [[0.5, 0.5, -1.25],
                                                                 [-1.0, 0.75, 0.75],
                                                                 [1.0, -0.5, -0.25]]
    # Columns (reference S_jj - 0.25): col 0 -> 0.25, col 1 -> 0.5, col 2 -> -0.5.
    assert masked_similarity(S3, 0.25, 1.0, dim=0).tolist() == [[0.5, 0.5, -0.25],
                                                                 [-1.0, 0.75, 0.75],
                                                                 [1.0, -1.5, -0.25]]
    assert clamp_diagonal(masked_similarity(S3, 0.25, 1.0, dim=1)).tolist() == [[0.5, 0.5, -1.25],
                                                                                 [-1.0, 0.75, 0.75],
                                                                                 [1.0, -0.5, 0.0]]
    with pytest.raises(ValueError, match="square"):
        masked_similarity(torch.zeros(2, 3), 0.2, 1.0)


def test_masked_similarity_mask_carries_no_gradient():
    S = S3.clone().requires_grad_(True)
    masked_similarity(S, 0.25, 1.0).sum().backward()
    assert torch.equal(S.grad, torch.ones_like(S))  # a shift is a constant: d/dS = 1 everywhere


def test_label_overlap_zero_diagonal():
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert label_overlap(y, y).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert label_overlap(y, y, zero_diagonal=True).tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]


S2 = torch.tensor([[0.5, -0.5],
                   [0.25, -0.25]])


def test_rch_loss_hand_computed_without_positives():
    T = torch.zeros(2, 2)
    e = math.exp
    # Rows: row 0 shifts -0.5 (< 0.25) to -1.5; row 1 keeps both; clamped diagonal [0.5, 0].
    row = [-0.5 + math.log(e(0.5) + e(-1.5)) + 0.25,
           0.25 + math.log(e(0.25) + e(0.0)) + 0.25]
    # Columns: nothing shifted (col 1: -0.5 >= -0.5); clamped diagonal [0.5, 0]; sums down columns.
    col = [-0.5 + math.log(e(0.5) + e(0.25)) + 0.25,
           0.25 + math.log(e(-0.5) + e(0.0)) + 0.25]
    assert rch_direction_loss(S2, T, 0.25, 1.0, 1.0, dim=1).tolist() == pytest.approx(row, rel=1e-6)
    assert rch_direction_loss(S2, T, 0.25, 1.0, 1.0, dim=0).tolist() == pytest.approx(col, rel=1e-6)
    assert rch_loss(S2, T, 0.25, 1.0, 1.0, quirk=False).tolist() == pytest.approx(
        [row[0] + col[0], row[1] + col[1]], rel=1e-6)
    # Published quirk: the second term repeats the row term.
    assert rch_loss(S2, T, 0.25, 1.0, 1.0, quirk=True).tolist() == pytest.approx([2 * row[0], 2 * row[1]], rel=1e-6)
    # tau = 0.5: tau * log sum exp(M / tau).
    assert rch_direction_loss(S2, T, 0.25, 1.0, 0.5, dim=1)[0].item() == pytest.approx(
        -0.5 + 0.5 * math.log(e(1.0) + e(-3.0)) + 0.25, rel=1e-6)


def test_rch_loss_semantic_positive_contributes_exp_zero():
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    T = label_overlap(y, y, zero_diagonal=True)  # [[0, 1], [1, 0]]
    # (1 - T) multiplies the exponent: the positive (0, 1) adds exp(0) = 1, not exp(-1.5).
    expected = [-0.5 + math.log(math.exp(0.5) + 1.0) + 0.25, 0.25 + math.log(1.0 + 1.0) + 0.25]
    assert rch_direction_loss(S2, T, 0.25, 1.0, 1.0, dim=1).tolist() == pytest.approx(expected, rel=1e-6)


def test_quantisation_loss_hand_computed():
    u = torch.tensor([[0.5, -0.5, 0.5, -0.5], [1.0, 0.0, 0.0, 0.0]])
    v = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    # 1/sqrt(4) = 0.5: a normalised binary code costs 0; (1, 0, 0, 0) costs (0.25 + 3 * 0.25) / 4.
    assert quantisation_loss(u, v).tolist() == pytest.approx([0.25, 0.25])


# -- encoder ----------------------------------------------------------------------------
def test_hash_encoder_is_tanh_then_unit_norm_and_mlp_unchanged():
    torch.manual_seed(0)
    enc = HashEncoder(5, [7], 4)
    x = torch.randn(3, 5)
    out = enc(x)
    raw = torch.tanh(enc.net(x))
    assert torch.allclose(out, raw / raw.norm(dim=1, keepdim=True))
    assert torch.allclose(out.norm(dim=1), torch.ones(3))
    assert [type(m).__name__ for m in mlp(5, [7], 4)] == ["Linear", "ReLU", "Linear"]


# -- classifier and separator loss ---------------------------------------------------------
W_HAND = torch.tensor([[math.atanh(0.5), 0.0], [0.0, math.atanh(-0.5)]])  # tanh(W) = diag(0.5, -0.5)


def test_per_sample_label_loss_takes_the_worst_positive():
    u = torch.tensor([[1.0, 0.0]] * 3)
    v = torch.tensor([[1.0, 0.0]] * 3)
    # Scores of u and v: [0.5, 0]. Class 0 (y=+1): 2 * 0.25 = 0.5; class 1: (y -+ 0)^2 * 2 = 2.
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    # Row 0: class 1 is negative and ignored although its loss (2) is larger; row 2 has no positive.
    assert per_sample_label_loss(u, v, labels, W_HAND).tolist() == pytest.approx([0.5, 2.0, 0.0])
    assert classifier_loss(u[:1], v[:1], labels[:1], W_HAND).item() == pytest.approx((0.5 + 2.0) / 2)


def test_classifier_term_trains_only_W():
    m = build()
    image, text = torch.randn(5, 20), torch.randn(5, 12)
    labels = (torch.rand(5, 6) < 0.4).float()
    codes = m.encode(image, text)
    classifier_loss(codes["image"], codes["text"], labels, m.W).backward()
    assert m.W.grad is not None and m.W.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        if name != "W":
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name
    # In the full loss, W's gradient comes from the classifier term alone.
    m.zero_grad(set_to_none=True)
    m.loss(Batch(index=torch.arange(5), image=image, text=text, labels=labels), 0)[0].backward()
    full_W_grad = m.W.grad.clone()
    m.zero_grad(set_to_none=True)
    codes = m.encode(image, text)
    classifier_loss(codes["image"], codes["text"], labels, m.W).backward()
    assert torch.allclose(full_W_grad, m.W.grad)


def test_classifier_lr_gives_W_its_own_rate_and_defaults_to_lr():
    published = build().configure_optimizer()[0]
    assert [g["lr"] for g in published.param_groups] == [1e-5, 1e-5]  # None: W at the published lr
    m = build(classifier_lr=1e-2, lr=1e-6)
    opt = m.configure_optimizer()[0]
    assert [g["lr"] for g in opt.param_groups] == [1e-6, 1e-2]
    assert opt.param_groups[1]["params"] == [m.W]
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in m.parameters())
    w0, enc0 = m.W.detach().clone(), m.image_net.net[0].weight.detach().clone()
    image, text = torch.randn(16, 20), torch.randn(16, 12)
    labels = (torch.rand(16, 6) < 0.4).float()
    for _ in range(5):
        opt.zero_grad()
        m.loss(Batch(index=torch.arange(16), image=image, text=text, labels=labels), 0)[0].backward()
        opt.step()
    w_move = (m.W.detach() - w0).abs().max()
    enc_move = (m.image_net.net[0].weight.detach() - enc0).abs().max()
    assert w_move > 1e-2 > 1e-4 > enc_move  # RMSprop steps are about lr (x10 on the first)


def test_in_batch_filtering_drops_rejected_rows():
    m = build()
    image, text = torch.randn(4, 20), torch.randn(4, 12)
    labels = (torch.rand(4, 6) < 0.4).float()
    idx = torch.arange(4)
    weighted, parts = m.loss(Batch(idx, image, text, labels, weight=torch.tensor([1.0, 0.0, 1.0, 0.0])), 0)
    sub, _ = m.loss(Batch(idx[[0, 2]], image[[0, 2]], text[[0, 2]], labels[[0, 2]]), 0)
    assert weighted.item() == pytest.approx(sub.item()) and parts["rows"] == 2
    empty, parts = m.loss(Batch(idx, image, text, labels, weight=torch.zeros(4)), 0)
    empty.backward()
    assert parts["rows"] == 0 and all(p.grad is None for p in m.parameters())  # no update at all


# -- the separator ------------------------------------------------------------------------
def test_separator_finds_the_noisy_subset():
    rng = np.random.default_rng(0)
    noisy = rng.random(3000) < 0.4
    losses = np.where(noisy, rng.normal(2.0, 0.4, 3000), rng.normal(0.6, 0.2, 3000)).clip(0)
    fit = fit_noise_separator(losses, seed=0)
    kept = fit.clean_probability >= 0.3
    precision = (kept & ~noisy).sum() / kept.sum()
    recall = (kept & ~noisy).sum() / (~noisy).sum()
    assert precision > 0.9 and recall > 0.9
    assert fit.mean_clean < fit.mean_noisy and fit.weight_clean == pytest.approx(0.6, abs=0.05)
    assert fit.normalised_loss.min() == pytest.approx(0.0, abs=1e-6) and fit.normalised_loss.max() == pytest.approx(1.0)
    again = fit_noise_separator(losses, seed=0)
    assert np.array_equal(fit.clean_probability, again.clean_probability)  # seeded
    flat = fit_noise_separator(np.full(10, 0.7), seed=0)
    assert np.all(flat.clean_probability == 1.0)


def test_threshold_schedules():
    assert [threshold_at(e, 0.3, 19) for e in (0, 18, 19, 99)] == [0.0, 0.0, 0.3, 0.3]
    assert threshold_at(18, 0.3, 19, "paper") == 0.0
    assert threshold_at(19, 0.3, 19, "paper") == pytest.approx(np.linspace(0, 0.3, 100)[19])
    assert threshold_at(99, 0.3, 19, "paper") == pytest.approx(0.3)
    assert threshold_at(150, 0.3, 19, "paper") == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="threshold_schedule"):
        threshold_at(30, 0.3, 19, "rising")


def _view(m, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TrainView(image=torch.randn(n, 20, generator=g), text=torch.randn(n, 12, generator=g),
                     labels=(torch.rand(n, 6, generator=g) < 0.3).float())


def test_before_epoch_warm_up_then_selection(monkeypatch):
    m = build(warmup_epochs=2, batching="subset")
    view = _view(m)
    rng = np.random.default_rng(1)
    noisy = rng.random(len(view)) < 0.5
    fake = torch.as_tensor(np.where(noisy, rng.normal(3.0, 0.3, len(view)), rng.normal(1.0, 0.3, len(view))))
    monkeypatch.setattr(m, "sample_losses", lambda v: fake)
    warm = m.before_epoch(view, 1)
    assert warm.kept.all() and warm.extra["warmup"] == 1.0 and warm.extra["threshold"] == 0.0
    assert warm.clean_score.shape == (len(view),)  # the score is there from the start (AUC diagnostic)
    sel = m.before_epoch(view, 2)
    kept = sel.kept.numpy()
    assert sel.extra["warmup"] == 0.0 and sel.extra["threshold"] == 0.3
    assert (kept & ~noisy).sum() / kept.sum() > 0.9 and (kept & ~noisy).sum() / (~noisy).sum() > 0.9
    assert torch.equal(sel.kept, sel.clean_score >= 0.3)
    assert sel.extra["gmm_mean_clean"] < sel.extra["gmm_mean_noisy"]
    m.hp["batching"] = "in_batch"
    inb = m.before_epoch(view, 2)
    assert inb.kept is None and torch.equal(inb.weights, sel.kept.float()) and torch.equal(inb.flagged, ~sel.kept)
    m.hp["separator"] = False
    assert m.before_epoch(view, 2) is None


def test_before_epoch_is_deterministic_and_seed_varies_by_epoch():
    m = build()
    view = _view(m)
    a, b = m.before_epoch(view, 25), m.before_epoch(view, 25)
    assert torch.equal(a.clean_score, b.clean_score)
    assert m.gmm_seed(25) == m.gmm_seed(25) != m.gmm_seed(26)
    assert build(seed=1).gmm_seed(25) != m.gmm_seed(25)


# -- hyper-parameters, state ------------------------------------------------------------------
def test_published_defaults():
    hp, src = resolve_hparams("nrch", "nuswide21")
    assert get_method("nrch") is NRCH
    expected = {"lr": 1e-5, "weight_decay": 1e-5, "batch_size": 128, "epochs": 100, "lambda": 0.6, "margin": 0.2,
                "shift": 1.0, "tau": 1.0, "threshold": 0.3, "warmup_epochs": 19, "gmm_max_iter": 10, "gmm_tol": 0.5,
                "gmm_reg_covar": 5e-4, "image_hidden": [8192, 8192], "text_hidden": [8192], "eval_every": 20,
                "selection": "best", "rch_quirk": True, "threshold_schedule": "code", "num_gradual": 100}
    assert {k: hp[k] for k in expected} == expected
    assert not any(v.startswith("borrowed") for v in src.values())
    opt, sched = build().configure_optimizer()
    assert isinstance(opt, torch.optim.RMSprop) and sched is None
    assert opt.defaults["lr"] == 1e-5 and opt.defaults["weight_decay"] == 1e-5


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="methods.nrch.batching"):
        build(batching="sometimes")
    with pytest.raises(ConfigError, match="methods.nrch.threshold"):
        build(threshold=1.5)


def test_orthogonal_classifier_init():
    m = build(bits=8)  # 6 classes x 8 bits: orthonormal rows
    assert torch.allclose(m.W @ m.W.T, torch.eye(6), atol=1e-5)


def test_state_dict_round_trip():
    a, b = build(seed=0), build(seed=5)
    assert int(a.separator_seed) != int(b.separator_seed)
    b.load_state_dict(a.state_dict())
    assert "separator_seed" in a.state_dict() and "W" in a.state_dict()
    x, t = torch.randn(4, 20), torch.randn(4, 12)
    ca, cb = a.encode_all(x, t), b.encode_all(x, t)
    assert all(torch.equal(ca[k], cb[k]) for k in ca)
    assert a.gmm_seed(30) == b.gmm_seed(30)
    view = _view(a)
    assert torch.equal(a.before_epoch(view, 30).clean_score, b.before_epoch(view, 30).clean_score)


# -- through the trainer -------------------------------------------------------------------
def run_trainer(batching="in_batch", protocol="sound", epochs=6):
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    hp = tiny_hp(epochs=epochs, warmup_epochs=2, eval_every=3, batch_size=32, lr=1e-3, batching=batching)
    settings = TrainSettings(method="nrch", hp=hp, bits=16, protocol=protocol, seed=0, device="cpu", progress=False,
                             checkpoint_every=0)
    return ds, Trainer(ds, noise.noisy, noise.corrupted, settings).run()


def test_short_training_run_through_trainer():
    torch.set_num_threads(1)
    ds, result = run_trainer()
    losses = [r["loss/total"] for r in result.history if "loss/total" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert result.codes["query_image"].shape == (ds.splits.query.size, 16)
    assert result.codes["database_text"].shape == (ds.splits.database.size, 16)
    assert set(np.unique(result.codes["query_text"])) <= {-1, 1}
    first, later = result.history[0], result.history[3]
    assert first["select/warmup"] == 1.0 and first["select/weight_noisy"] == 1.0  # warm-up: everything
    assert "select/auc" in first  # the separator's score is logged from the start
    assert later["select/warmup"] == 0.0 and later["select/threshold"] == 0.3
    assert 0.0 < later["select/kept_fraction"] <= 1.0 and "select/gmm_mean_clean" in later
    assert {"select/precision", "select/recall"} <= set(later)  # scored although every row is batched
    assert later["select/recall"] == pytest.approx(later["select/weight_clean"])
    assert later["loss/rows"] <= 32  # in-batch filtering: batches shrink, their number does not
    assert later["train/rows"] == first["train/rows"]


def test_subset_batching_logs_precision_and_recall():
    _, result = run_trainer("subset", "paper", epochs=3)
    later = result.history[2]
    assert {"select/precision", "select/recall", "select/kept_fraction"} <= set(later)
    assert later["train/rows"] == pytest.approx(later["select/kept_fraction"] * result.history[0]["train/rows"])
