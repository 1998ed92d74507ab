"""DCMH as published: the objective by hand and against the official ``calc_loss``, the batch
gradient against the official update, the alternation onto the trainer's epochs, the schedule,
the buffers through state_dict and checkpoint resume, and a short run through the trainer.

Expected values marked "Octave" were produced in a scratch folder outside the repository
(/tmp/dcmh_ref) with GNU Octave 7 running the official ``calc_loss`` and ``e_sign`` functions of
jiangqy/DCMH-CVPR2017 @ 67d0e84 (DCMH_matlab/DCMH_matlab/process_DCMH.m:118-124, :157-161) and
its gradient lines (process_DCMH.m:42-44 text pass, :66-69 image pass) on the inputs of
:func:`official_inputs`; the official code is not part of this repository.
"""
import itertools
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, get_method, resolve_hparams
from cmhash.methods.baseline import pairwise_similarity
from cmhash.methods.dcmh import (
    DCMH,
    LogspaceByIteration,
    batch_objective,
    dcmh_objective,
    negative_log_likelihood,
    update_codes,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset, small_view, train_step

torch.set_num_threads(1)


def T(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def official_inputs():
    """The Octave inputs, in our layout (rows x bits; the official F, G are bits x rows, i.e.
    the transposes of these)."""
    labels = T([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]])
    f = T([[0.5, -1.0, 0.2, 0.0], [-0.3, 0.8, -0.6, 1.2], [0.1, 0.4, -0.9, -0.2]]).T
    g = T([[0.7, -0.2, -0.5, 0.3], [0.2, 0.6, -0.1, -0.8], [-0.4, 0.9, 0.3, 0.5]]).T
    return labels, f, g


# ----------------------------------------------------------------------------- the objective
def test_objective_hand_computed():
    # N = 2 rows, 1 bit: f = (2, 0), g = (1, -1); labels share a class -> S = all ones.
    # Theta = 1/2 f g^T = [[1, -1], [0, 0]];  sum softplus(Theta) - Theta
    #   = (log(1+e) - 1) + (log(1+e^-1) + 1) + log 2 + log 2 = 1 + 2 log(1+e^-1) + 2 log 2 = 3.012817
    # B = sign(f + g) = (1, -1); ||f - B||^2 + ||g - B||^2 = 1 + 1 + 0 + 0 = 2; ||f^T 1||^2 + ||g^T 1||^2 = 4 + 0
    labels = T([[1, 0], [1, 1]])
    f, g = T([[2], [0]]), T([[1], [-1]])
    b = update_codes(f, g, 1.0)
    assert b.flatten().tolist() == [1.0, -1.0]
    nll = 1 + 2 * math.log1p(math.exp(-1)) + 2 * math.log(2)
    assert nll == pytest.approx(3.012817, abs=1e-6)
    assert negative_log_likelihood(f, g, pairwise_similarity(labels, labels)).item() == pytest.approx(nll)
    out = dcmh_objective(labels, f, g, b, gamma=1.0, eta=1.0)
    assert out["objective_quantisation"] == 2.0 and out["objective_balance"] == 4.0
    assert out["objective"] == pytest.approx(nll + 2 + 4)
    assert dcmh_objective(labels, f, g, b, gamma=0.5, eta=2.0)["objective"] == pytest.approx(nll + 1 + 8)


def test_objective_matches_the_official_calc_loss():
    labels, f, g = official_inputs()
    assert pairwise_similarity(labels, labels).tolist() == [[1, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 0], [0, 1, 0, 1]]
    b = update_codes(f, g, 1.0)
    assert b.T.tolist() == [[1, -1, -1, 1], [-1, 1, -1, 1], [-1, 1, -1, 1]]  # Octave: e_sign(gamma*(F+G))
    # Octave: calc_loss(S, F, G, B, gamma, eta, 4)
    assert dcmh_objective(labels, f, g, b, 1.0, 1.0)["objective"] == pytest.approx(30.936195240675, abs=1e-9)
    assert dcmh_objective(labels, f, g, update_codes(f, g, 0.5), 0.5, 2.0)["objective"] == pytest.approx(
        26.451195240675, abs=1e-9)
    # Octave: zero buffers give B = e_sign(0) = 0 and calc_loss = N^2 log 2 = 11.090354888959
    z = torch.zeros_like(f)
    b0 = update_codes(z, z, 1.0)
    assert not b0.any()
    assert dcmh_objective(labels, z, z, b0, 1.0, 1.0)["objective"] == pytest.approx(11.090354888959, abs=1e-9)
    assert 16 * math.log(2) == pytest.approx(11.090354888959, abs=1e-9)
    # chunking S changes nothing
    assert dcmh_objective(labels, f, g, b, 1.0, 1.0, chunk=1)["objective"] == pytest.approx(30.936195240675, abs=1e-9)


def test_batch_gradient_is_the_official_update():
    labels, f, g = official_inputs()
    b = update_codes(f, g, 1.0)
    s = pairwise_similarity(labels, labels)
    # text pass, batch = rows 2 and 4 (1-based); the fresh outputs equal the stored G columns
    idx = torch.tensor([1, 3])
    out = g[idx].clone().requires_grad_()
    total, _ = batch_objective(out, idx, g.clone(), f, b, s[:, idx], 1.0, 1.0, scale=1.0)
    total.backward()
    # Octave dJdGb (bits x batch), transposed here to batch x bits
    expected = T([[2.290813139056, -0.314450891812], [-1.436285509609, -4.650864774404],
                  [2.183593381711, 1.342333831389]]).T
    assert torch.allclose(out.grad, expected, atol=1e-10)
    # image pass, batch = rows 1 and 3 (1-based)
    idx = torch.tensor([0, 2])
    out = f[idx].clone().requires_grad_()
    total, _ = batch_objective(out, idx, f.clone(), g, b, s[:, idx], 1.0, 1.0, scale=1.0)
    total.backward()
    expected = T([[-1.747553580109, 2.167610472200], [3.150276204763, 2.983130333528],
                  [1.068213641626, -0.903520115574]]).T
    assert torch.allclose(out.grad, expected, atol=1e-10)


def test_batch_objective_over_all_rows_is_the_networks_part_of_J():
    labels, f, g = official_inputs()
    b = update_codes(f, g, 1.0)
    s = pairwise_similarity(labels, labels)
    idx = torch.arange(4)
    total, parts = batch_objective(g.clone(), idx, g.clone(), f, b, s, 1.0, 2.0, scale=0.5)
    full = dcmh_objective(labels, f, g, b, 1.0, 2.0)
    own = full["objective"] - ((f - b) ** 2).sum().item() - 2.0 * (f.sum(0) ** 2).sum().item()
    assert total.item() == pytest.approx(0.5 * own, abs=1e-9)
    assert sum(parts.values()) == pytest.approx(total.item(), abs=1e-9)
    # the batch's rows of the balance column sum come from the fresh outputs, the others from the buffer
    stale = g.clone()
    stale[idx[:2]] = 9.0
    fresh = g[:2].clone()
    buffer = stale.clone()
    buffer[:2] = fresh
    a, _ = batch_objective(fresh, idx[:2], buffer, f, b, s[:, :2], 1.0, 1.0, 1.0)
    ref = negative_log_likelihood(f, fresh, s[:, :2]) + ((fresh - b[:2]) ** 2).sum() + (g.sum(0) ** 2).sum()
    assert a.item() == pytest.approx(ref.item(), abs=1e-9)


# ----------------------------------------------------------------------------- hyper-parameters
def test_registration_and_published_values():
    assert get_method("dcmh") is DCMH
    for family in ("mirflickr25k", "nuswide21", "nuswide10", "mscoco", "iaprtc12", "wikipedia"):
        hp, src = resolve_hparams("dcmh", family)
        assert not any(v.startswith("borrowed") for v in src.values())
    expected = {"epochs": 1000, "batch_size": 128, "selection": "last", "lr_log10": [-1.5, -3.0],
                "weight_decay": 5e-4, "gamma": 1.0, "eta": 1.0, "first_modality": "text", "buffer_init": "zeros",
                "text_zero_mean": True, "init_std": 0.01, "image_hidden": [], "text_hidden": [8192]}
    assert {k: hp[k] for k in expected} == expected
    assert DCMH.paper_denominator == "zero"


def test_learning_rate_is_logspace_over_outer_iterations():
    m = build(epochs=1000, lr_log10=[-1.5, -3.0])
    opt, sched = m.configure_optimizer()
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.0
    assert opt.defaults["weight_decay"] == 5e-4
    published = np.logspace(-1.5, -3, 500)
    seen = []
    for _ in range(1000):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
        sched.step()
    assert seen[0] == pytest.approx(10 ** -1.5) and seen[-1] == pytest.approx(1e-3)
    assert np.allclose(seen[0::2], published) and np.allclose(seen[1::2], published)  # both passes of an iteration
    assert LogspaceByIteration(-1.5, -3, 500)(5000) == pytest.approx(1e-3)  # held after the end


def test_configuration_errors_are_named():
    with pytest.raises(ConfigError, match="methods.dcmh.epochs"):
        build(epochs=7)
    with pytest.raises(ConfigError, match="methods.dcmh.first_modality"):
        build(first_modality="audio")
    with pytest.raises(ConfigError, match="methods.dcmh.buffer_init"):
        build(buffer_init="ones")
    with pytest.raises(ConfigError, match="methods.dcmh.lr_log10"):
        build(lr_log10=[-1.5])


def test_networks_follow_the_published_structure():
    m = DCMH(4096, 1386, 24, 64, dict(DCMH.defaults), "paper")
    image = [layer for layer in m.image_net if isinstance(layer, torch.nn.Linear)]
    text = [layer for layer in m.text_net if isinstance(layer, torch.nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in image] == [(4096, 64)]  # hash layer after fc7
    assert [(layer.in_features, layer.out_features) for layer in text] == [(1386, 8192), (8192, 64)]
    assert isinstance(m.text_net[1], torch.nn.ReLU) and len(m.text_net) == 3  # linear output, no tanh
    for layer in image + text:  # 0.01 * randn weights and biases
        assert abs(layer.weight.std().item() - 0.01) < 1e-3 and abs(layer.bias.std().item() - 0.01) < 3e-3


# ----------------------------------------------------------------------------- the alternation
def tiny_hp(**kw):
    """Tiny networks and 4 outer iterations. The rates are raised from the published
    logspace(-1.5, -3) so that 4 iterations on 130 rows move the objective visibly."""
    return {**DCMH.defaults, "epochs": 8, "batch_size": 32, "eval_every": 4, "text_hidden": [32],
            "lr_log10": [-0.5, -1.0], **kw}


def build(seed=0, **kw) -> DCMH:
    torch.manual_seed(seed)
    return DCMH(20, 12, 6, 8, tiny_hp(**kw), "paper")


def test_one_pass_trains_one_network_and_writes_its_buffer():
    m, view = build(), small_view()
    opt, _ = m.configure_optimizer()
    sel = m.before_epoch(view, 0)
    assert m.F.shape == m.G.shape == m.B.shape == (40, 8)
    assert not m.B.any() and sel.extra["zero_code_fraction"] == 1.0  # published: B = sign(0) = 0 at first
    assert sel.extra["objective"] == pytest.approx(40 * 40 * math.log(2), rel=1e-9)
    assert torch.allclose(m.text_mean, view.text.mean(0))
    image_before = [p.clone() for p in m.image_net.parameters()]
    text_before = [p.clone() for p in m.text_net.parameters()]
    rows = torch.arange(10)
    with torch.no_grad():
        pre_step = m.text_net(view.text[:10] - m.text_mean)
    parts = train_step(m, view, opt, 0, rows)  # epoch 0: the text pass (published order)
    assert parts["image_pass"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(image_before, m.image_net.parameters()))  # untouched, no decay
    assert not all(torch.equal(a, b) for a, b in zip(text_before, m.text_net.parameters()))
    assert m.G[:10].abs().sum() > 0 and not m.G[10:].any() and not m.F.any()
    assert torch.equal(m.G[:10], pre_step)  # G holds the batch's outputs from before the step (process_DCMH.m:40)
    m.before_epoch(view, 1)  # odd epoch: B is not updated
    assert not m.B.any()
    assert train_step(m, view, opt, 1, rows)["image_pass"] == 1.0 and m.F[:10].abs().sum() > 0
    m.before_epoch(view, 2)  # next outer iteration: B = sign(gamma (F + G))
    assert torch.equal(m.B, torch.sign(m.F + m.G)) and m.B[:10].abs().sum() == 80
    assert m.modality_at(2) == "text" and build(first_modality="image").modality_at(2) == "image"


def test_normal_buffer_init_gives_signed_first_codes():
    m = build(buffer_init="normal")
    m.before_epoch(small_view(), 0)
    assert m.F.std() > 0.5 and torch.equal(m.B, torch.sign(m.F + m.G)) and m.B.abs().min() == 1


def test_loss_before_the_hook_is_an_error():
    m, view = build(), small_view()
    with pytest.raises(RuntimeError, match="before_epoch"):
        m.loss(Batch(index=torch.arange(4), image=view.image[:4], text=view.text[:4], labels=view.labels[:4]), 0)


def test_state_dict_round_trip_carries_the_buffers():
    m, view = build(), small_view()
    opt, _ = m.configure_optimizer()
    for epoch in range(3):
        m.before_epoch(view, epoch)
        train_step(m, view, opt, epoch, torch.arange(0, 40, 3))
    state = m.state_dict()
    assert {"F", "G", "B", "text_mean"} <= set(state) and state["F"].shape == (40, 8)
    fresh = build(seed=5)
    assert fresh.F.shape == (0, 8)
    fresh.load_state_dict(state)
    for name in ("F", "G", "B", "text_mean"):
        assert torch.equal(getattr(fresh, name), getattr(m, name))
    x, t = torch.randn(5, 20), torch.rand(5, 12)
    a, b = m.encode_all(x, t), fresh.encode_all(x, t)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- through the trainer
def make_trainer(protocol="sound", checkpoint_path=None, checkpoint_every=0, **hp):
    # standardised features: the balance term's curvature grows with the squared feature mean
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    settings = TrainSettings(method="dcmh", hp=tiny_hp(**hp), bits=16, protocol=protocol, seed=0, device="cpu",
                             progress=False, checkpoint_every=checkpoint_every, standardize=True)
    return ds, Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=checkpoint_path)


def run_cell(protocol="sound", checkpoint_path=None, checkpoint_every=0, **hp):
    ds, trainer = make_trainer(protocol, checkpoint_path, checkpoint_every, **hp)
    return ds, trainer, trainer.run()


@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_short_run_lowers_the_objective_and_gives_codes(protocol):
    ds, trainer, result = run_cell(protocol)
    epochs = [r for r in result.history if "loss/total" in r]
    assert len(epochs) == 8 and [r["loss/image_pass"] for r in epochs] == [0, 1] * 4
    objective = [r["select/objective"] for r in epochs]
    n = len(trainer.view)
    assert objective[0] == pytest.approx(n * n * math.log(2), rel=1e-6)  # zero buffers, B = 0
    # B = sign(F + G) turns nonzero at epoch 2 (the quantisation term jumps); from then on every
    # outer iteration lowers J
    assert epochs[1]["select/zero_code_fraction"] == 1.0 and epochs[-1]["select/zero_code_fraction"] == 0.0
    after = objective[2::2]
    assert all(b < a for a, b in itertools.pairwise(after)) and objective[-1] < objective[2]
    assert epochs[-1]["select/objective_likelihood"] < n * n * math.log(2)
    assert result.selected_epoch == 8  # selection = last
    for split, rows in (("query", ds.splits.query), ("database", ds.splits.database)):
        for modality in ("image", "text"):
            codes = result.codes[f"{split}_{modality}"]
            assert codes.shape == (rows.size, 16) and set(np.unique(codes)) <= {-1, 1}
    assert {"select_map/i2t", "select_map/t2i"} <= set(result.history[-1])


def test_resume_mid_iteration_is_identical(tmp_path):
    _, _, full = run_cell(checkpoint_path=tmp_path / "a.pt", checkpoint_every=1)
    _, first = make_trainer(checkpoint_path=tmp_path / "b.pt", checkpoint_every=1)
    original = first._save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(next_epoch, state, complete=False):
        original(next_epoch, state, complete)
        if next_epoch == 3:  # mid iteration 1: its text pass done, its B must come from the checkpoint
            raise Stop

    first._save_checkpoint = save_then_stop
    with pytest.raises(Stop):
        first.run()
    _, resumed = make_trainer(checkpoint_path=tmp_path / "b.pt", checkpoint_every=1)
    result = resumed.run()
    assert result.resumed_from == 3
    for key in full.codes:
        assert np.array_equal(full.codes[key], result.codes[key])
    assert [r.get("select/objective") for r in result.history] == [r.get("select/objective") for r in full.history]
