"""DGCPN: the graph-neighbour affinity and the loss on hand-computed cases and against the official
code's numbers (the alternating updates included), the label-free contract, the published
settings, a short training run through the trainer, and state round trips."""
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, TrainView, get_method, resolve_hparams
from cmhash.methods.dgcpn import (
    DGCPN,
    dgcpn_loss,
    graph_neighbour_affinity,
    neighbour_distribution,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

TINY = {"image_hidden": 32, "text_hidden": 32, "neighbours": 40, "scale": 80.0}


def tiny_hp(family="mirflickr25k", **overrides):
    hp, _ = resolve_hparams("dgcpn", family, {**TINY, **overrides})
    return hp


def build(seed=0, bits=8, protocol="sound", image_dim=20, text_dim=12, **overrides):
    torch.manual_seed(seed)
    m = DGCPN(image_dim, text_dim, 6, bits, tiny_hp(**overrides), protocol)
    m.configure_optimizer()
    return m


# -- the affinity --------------------------------------------------------------------------------
def test_neighbour_distribution_hand_computed():
    s = torch.tensor([[1.0, 0.5, 0.25, 0.1],
                      [0.5, 1.0, 0.2, 0.3],
                      [0.25, 0.2, 1.0, 0.6],
                      [0.1, 0.3, 0.6, 1.0]])
    # neighbours 3: keep the 3 largest of each row, drop the largest (the row itself), sum to 1.
    expected = [[0, 0.5 / 0.75, 0.25 / 0.75, 0],
                [0.5 / 0.8, 0, 0, 0.3 / 0.8],
                [0.25 / 0.85, 0, 0, 0.6 / 0.85],
                [0, 0.3 / 0.9, 0.6 / 0.9, 0]]
    assert torch.allclose(neighbour_distribution(s, 3), torch.tensor(expected), atol=1e-6)
    assert torch.allclose(neighbour_distribution(s, 3, block=1), torch.tensor(expected), atol=1e-6)
    # More neighbours than rows: everything but the largest.
    assert torch.allclose(neighbour_distribution(s, 10)[0], torch.tensor([0, 0.5, 0.25, 0.1]) / 0.85, atol=1e-6)


def test_graph_neighbour_affinity_hand_computed():
    image = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    text = torch.tensor([[1.0], [1.0], [2.0]])  # every text cosine is 1
    c = 1.0 / math.sqrt(2.0)
    a1, a2, scale = 0.5, 0.25, 2.0
    s_pair = 0.5 * torch.ones(3, 3) + 0.5 * torch.tensor([[1.0, 0.0, c], [0.0, 1.0, c], [c, c, 1.0]])
    # neighbours 2: each row keeps itself and its best other row, then drops itself -> one-hot rows.
    # Row 0 -> 2, row 1 -> 2, row 2 -> 0 or 1 (a tie; topk takes the first).
    S, pair, coherence = graph_neighbour_affinity(image, text, a1=a1, a2=a2, neighbours=2, scale=scale)
    assert torch.allclose(pair, s_pair, atol=1e-6)
    P = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(coherence, scale * P @ P.T, atol=1e-6)
    assert torch.allclose(S, 2 * (0.75 * s_pair + 0.25 * scale * P @ P.T) - 1, atol=1e-6)


def test_loss_hand_computed():
    # Identical unit codes in both modalities: B_I B_I^T = B_T B_T^T = B_I B_T^T = G (cons = 0).
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    S = torch.tensor([[5.0, 0.5], [0.5, 5.0]])
    total, parts = dgcpn_loss(u, u.clone(), S, K=1.5, dw=2.0, cw=3.0)
    assert parts["pair"] == pytest.approx(0.25)  # (1 - 1.5)^2 on the diagonal
    assert parts["affinity_it"] == pytest.approx(2 * 0.25 / 4)  # diagonal masked; off-diagonal (0 - 0.5)^2
    assert parts["coherence"] == pytest.approx(0.0)
    assert total.item() == pytest.approx(0.25 + 2.0 * 3 * 0.125)
    # Asymmetric cross-modal similarities: the last coherence term compares B_I B_T^T with its transpose.
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    _, parts = dgcpn_loss(u, v, torch.zeros(2, 2), K=1.0, dw=0.0, cw=1.0)
    # G_it = [[1, 1], [0, 0]], G_ii = I, G_tt = ones.
    expected = (1 + 0 + 1 + 0) / 4 + (0 + 0 + 1 + 1) / 4 + (0 + 1 + 1 + 0) / 4 + (0 + 1 + 1 + 0) / 4
    assert parts["coherence"] == pytest.approx(expected)


# -- against the official code --------------------------------------------------------------------
# Expected values from the official DGCPN code (Atmegal/DGCPN @ 9f62c56, train_div.py:78-172,
# models.py:9-55) run in isolation in a scratch folder outside the repository. Edits to the
# official lines: .cuda()/Variable removed; self.opt replaced by a namespace (a1 0.3, a2 0.4,
# knn_number 2 on these 6 rows, i.e. neighbours = 6 - 2 = 4, scale 4, K 1.5, dw 1, cw 1; SGD
# lr 0.005, momentum 0.9, weight decay 5e-4 as train.py:39-41); ImgNet fc1 4096 -> 4096 shrunk to
# 5 -> 8 and the hash layers to 8 -> 4, TxtNet's hidden 4096 -> 8; every parameter set by
# _fill (k-th parameter in named_parameters order, image net first) instead of the random init;
# the nets in eval mode (no dropout) for the updates; two batches of rows [0, 2, 3, 5].
X = torch.tensor([[1., 0., 2., 0., 1.], [0., 3., 1., 1., 0.], [2., 1., 0., 0., 1.], [0., 0., 1., 2., 2.],
                  [1., 1., 1., 0., 0.], [0., 2., 0., 1., 3.]])
Y = torch.tensor([[1., 1., 0.], [0., 1., 1.], [1., 0., 0.], [0., 2., 1.], [2., 0., 1.], [1., 3., 0.]])
OFFICIAL_S = [[1.27573395, 0.10362124, 0.18512714, -0.3150779, 0.1937232, 0.00686312],
              [0.10362124, 1.27343512, 0.08305287, 0.06654441, -0.30125701, 0.10182273],
              [0.18512714, 0.08305287, 1.3093195, -0.10786575, 0.25258088, -0.15907085],
              [-0.3150779, 0.06654441, -0.10786575, 1.30063295, -0.17791605, 0.45572591],
              [0.1937232, -0.30125701, 0.25258088, -0.17791605, 1.279459, -0.05209231],
              [0.00686312, 0.10182273, -0.15907085, 0.45572591, -0.05209231, 1.29794025]]
OFFICIAL_COHERENCE_ROW0 = [1.3446674346923828, 0.8960343599319458, 0.6382107734680176, 0.0, 0.4650866687297821,
                           0.5123933553695679]
# Per batch: step (a) loss and its parts (pair, dis_1 = tt, dis_2 = it, dis_3 = ii, cons), steps (b), (c).
OFFICIAL_STEPS = [(3.2529625893, [1.0012112856, 0.7113891840, 0.2378820181, 0.7640401721, 0.5384396315],
                   3.8280355930, 2.6229271889),
                  (2.7288265228, [0.6298869252, 0.7128413320, 0.4189482033, 0.7785397172, 0.1886103898],
                   2.9239473343, 2.5735762119)]
OFFICIAL_IMAGE_SUMS = [2.0706355572, 2.0501570702, -0.4586232901, -0.6728630066]
OFFICIAL_TEXT_SUMS = [-2.2749686241, 0.1055350900, 0.5627546906, 1.6757299900]


def _fill(module):
    with torch.no_grad():
        for k, (_, p) in enumerate(module.named_parameters()):
            p.copy_(torch.sin(torch.arange(p.numel(), dtype=torch.float32) * 0.37 + k).reshape(p.shape) * 0.5)


def test_affinity_equals_official_code():
    S, _, coherence = graph_neighbour_affinity(X, Y, a1=0.3, a2=0.4, neighbours=4, scale=4.0)
    assert torch.allclose(S, torch.tensor(OFFICIAL_S), atol=1e-6)
    assert torch.allclose(coherence[0], torch.tensor(OFFICIAL_COHERENCE_ROW0), atol=1e-6)


def test_alternating_updates_equal_official_code():
    m = build(image_dim=5, text_dim=3, bits=4, image_hidden=8, text_hidden=8, a1=0.3, a2=0.4, neighbours=4,
              scale=4.0, lr=0.005)
    _fill(m)
    m.eval()  # the official run was made without dropout
    m.before_epoch(TrainView(image=X, text=Y, labels=None), 0)
    index = torch.tensor([0, 2, 3, 5])
    for total_ref, parts_ref, image_ref, text_ref in OFFICIAL_STEPS:
        total, parts = m.loss(Batch(index=index, image=X[index], text=Y[index], labels=None), 0)
        assert total.item() == pytest.approx(total_ref, abs=1e-6)
        got = [parts[k] for k in ("pair", "affinity_tt", "affinity_it", "affinity_ii", "coherence")]
        assert got == pytest.approx(parts_ref, abs=1e-6)
        assert parts["image_step"] == pytest.approx(image_ref, abs=1e-6)
        assert parts["text_step"] == pytest.approx(text_ref, abs=1e-6)
    assert [p.sum().item() for p in m.image_net.parameters()] == pytest.approx(OFFICIAL_IMAGE_SUMS, abs=1e-5)
    assert [p.sum().item() for p in m.text_net.parameters()] == pytest.approx(OFFICIAL_TEXT_SUMS, abs=1e-5)


def test_returned_loss_makes_the_trainer_step_a_no_op():
    m = build()
    view = TrainView(image=torch.randn(50, 20), text=torch.randn(50, 12).abs(), labels=None)
    m.before_epoch(view, 0)
    idx = torch.arange(8)
    loss, _ = m.loss(Batch(index=idx, image=view.image[idx], text=view.text[idx], labels=None), 0)
    before = [p.detach().clone() for p in m.parameters()]
    m._optimizer.zero_grad(set_to_none=True)
    loss.backward()
    m._optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    joint = build(alternating=False)
    joint.before_epoch(view, 0)
    loss, parts = joint.loss(Batch(index=idx, image=view.image[idx], text=view.text[idx], labels=None), 0)
    assert loss.grad_fn is not None and "image_step" not in parts  # the trainer takes the single step


# -- the method -------------------------------------------------------------------------------------
def test_networks():
    m = build()
    assert [type(x).__name__ for x in m.image_net.children()] == ["Linear", "Linear", "Dropout"]
    assert m.image_net.dropout.p == 0.5 and m.image_net.fc1.out_features == 32
    torch.manual_seed(0)
    published = DGCPN(64, 1386, 24, 64, resolve_hparams("dgcpn", "mirflickr25k")[0], "paper")
    assert published.image_net.fc1.out_features == 4096 and published.text_net.fc1.out_features == 4096
    assert published.text_net.fc_encode.weight.std().item() == pytest.approx(0.3, rel=0.02)  # models.py:44
    x = torch.randn(4, 20)
    m.eval()
    out = m.image_net(x)
    assert torch.allclose(out, torch.tanh(m.image_net.fc_encode(torch.relu(m.image_net.fc1(x)))))


def test_reads_no_label():
    assert DGCPN.reads_labels is False and get_method("dgcpn") is DGCPN
    m = build()
    view = TrainView(image=torch.randn(50, 20), text=torch.rand(50, 12), labels=None)
    assert m.before_epoch(view, 0) is None and m.affinity.shape == (50, 50)
    loss, parts = m.loss(Batch(index=torch.arange(6), image=view.image[:6], text=view.text[:6], labels=None), 0)
    assert torch.isfinite(loss) and parts["rows"] == 6


def test_published_settings():
    hp, src = resolve_hparams("dgcpn", "mirflickr25k")
    expected = {"epochs": 100, "batch_size": 32, "eval_every": 1, "selection": "best", "lr": 0.005,
                "weight_decay": 5e-4, "momentum": 0.9, "K": 1.5, "dw": 1.0, "cw": 1.0, "a1": 0.01, "a2": 0.3,
                "neighbours": 2000, "scale": 4000.0, "dropout": 0.5, "image_hidden": 4096, "text_hidden": 4096,
                "text_encode_std": 0.3, "alternating": True}
    assert {k: hp[k] for k in expected} == expected
    assert src["neighbours"] == "published:mirflickr25k"
    _, src = resolve_hparams("dgcpn", "wikipedia")
    assert src["neighbours"] == "borrowed:mirflickr25k"
    opt, sched = build().configure_optimizer()
    assert isinstance(opt, torch.optim.SGD) and sched is None and len(opt.param_groups) == 2
    assert opt.defaults["lr"] == 0.005 and opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 5e-4


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="methods.dgcpn.neighbours"):
        build(neighbours=1)
    with pytest.raises(ConfigError, match="methods.dgcpn.a2"):
        build(a2=2.0)


def test_state_dict_round_trip_rebuilds_the_affinity():
    a, b = build(seed=0), build(seed=4)
    view = TrainView(image=torch.randn(50, 20), text=torch.rand(50, 12), labels=None)
    a.before_epoch(view, 0)
    assert "affinity" not in a.state_dict()  # rows^2 floats are rebuilt, not saved
    b.load_state_dict(a.state_dict())
    b.before_epoch(view, 3)
    assert torch.equal(a.affinity, b.affinity)
    x, t = torch.randn(4, 20), torch.rand(4, 12)
    ca, cb = a.encode_all(x, t), b.encode_all(x, t)
    assert all(torch.equal(ca[k], cb[k]) for k in ca)


# -- through the trainer -------------------------------------------------------------------------
def run_trainer(protocol="sound", rate=0.4, noise_seed=1, epochs=6):
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", rate, seed=noise_seed)
    hp = tiny_hp(epochs=epochs, eval_every=3, batch_size=32, lr=0.01)
    settings = TrainSettings(method="dgcpn", hp=hp, bits=16, protocol=protocol, seed=0, device="cpu", progress=False,
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
    assert result.selected_epoch == 6  # a label-free method keeps its last epoch under sound


def test_paper_selects_on_validation_rows_with_early_stopping(monkeypatch):
    """train_div.py:201-223, train.py:24-25: every epoch the validation split against the database
    (clean labels), a strict improvement kept, a stop once more than 10 evaluations brought none."""
    assert (DGCPN.paper_selection.split, DGCPN.paper_selection.ties, DGCPN.paper_selection.patience) == \
        ("validation", "earlier", 10) and not DGCPN.paper_scores_untrained
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    settings = TrainSettings(method="dgcpn", hp=tiny_hp(epochs=40, batch_size=64), bits=16, protocol="paper", seed=0,
                             device="cpu", progress=False, checkpoint_every=0)
    trainer = Trainer(ds, noise.noisy, noise.corrupted, settings)
    q, db = trainer.paper_selection_rows()
    assert np.array_equal(q, ds.splits.validation) and np.array_equal(db, ds.splits.database)
    scores = iter([0.1, 0.3, 0.2] + [0.3] * 40)  # epochs 1, 2, 3, ...: the best at 2, then ties only
    monkeypatch.setattr(trainer, "selection_scores", lambda: {"i2t": next(scores), "t2i": 0.0})
    result = trainer.run()
    assert result.selected_epoch == 2  # an exact tie is no improvement: the earlier epoch stays
    assert result.stopped_at == 13  # epochs 3..13: 11 > 10 candidates in a row without improvement
    assert [int(r["epoch"]) for r in result.history if "select_map/i2t" in r] == list(range(1, 14))
    assert sum("loss/total" in r for r in result.history) == 13  # epochs 0..12 trained; none after the stop


def test_result_does_not_depend_on_the_noise():
    torch.set_num_threads(1)
    _, a = run_trainer(rate=0.2, noise_seed=1, epochs=2)
    _, b = run_trainer(rate=0.8, noise_seed=7, epochs=2)
    assert all(np.array_equal(a.codes[k], b.codes[k]) for k in a.codes)
