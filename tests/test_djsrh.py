"""DJSRH: the joint-semantics affinity and the reconstruction loss on hand-computed cases and
against the official code's numbers, the label-free contract, the published settings, a short
training run through the trainer, and state round trips."""
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, TrainView, get_method, resolve_hparams
from cmhash.methods.djsrh import (
    DJSRH,
    alpha_at,
    cosine_affinity,
    djsrh_objective,
    joint_semantics_affinity,
    reconstruction_loss,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

TINY = {"text_hidden": [32]}


def tiny_hp(family="mirflickr25k", **overrides):
    hp, _ = resolve_hparams("djsrh", family, {**TINY, **overrides})
    return hp


def build(seed=0, bits=8, protocol="paper", **overrides):
    torch.manual_seed(seed)
    return DJSRH(20, 12, 6, bits, tiny_hp(**overrides), protocol)


# -- the affinity ---------------------------------------------------------------------------
def test_cosine_affinity_hand_computed():
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    c = 1.0 / math.sqrt(2.0)
    expected = [[1.0, 2 * c - 1, -1.0], [2 * c - 1, 1.0, 2 * c - 1], [-1.0, 2 * c - 1, 1.0]]
    assert torch.allclose(cosine_affinity(f), torch.tensor(expected), atol=1e-6)


def test_joint_semantics_affinity_hand_computed():
    # S_I = [[1, -1], [-1, 1]] (orthogonal rows), S_T = [[1, 1], [1, 1]] (parallel rows).
    image = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    text = torch.tensor([[1.0, 2.0], [2.0, 4.0]])
    beta, eta, mu = 0.75, 0.5, 2.0
    # S~ = 0.75 S_I + 0.25 S_T = [[1, -0.5], [-0.5, 1]]; S~ S~^T / 2 = [[0.625, -0.5], [-0.5, 0.625]].
    expected = [[2.0 * (0.5 * 1.0 + 0.5 * 0.625), 2.0 * (0.5 * -0.5 + 0.5 * -0.5)],
                [2.0 * (0.5 * -0.5 + 0.5 * -0.5), 2.0 * (0.5 * 1.0 + 0.5 * 0.625)]]
    S = joint_semantics_affinity(image, text, beta=beta, eta=eta, mu=mu)
    assert torch.allclose(S, torch.tensor(expected), atol=1e-6)
    # beta = 1 and eta = 0, mu = 1: S is S_I (the README's "S = S_I" ablation).
    assert torch.allclose(joint_semantics_affinity(image, text, beta=1.0, eta=0.0, mu=1.0),
                          torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), atol=1e-6)


def test_reconstruction_loss_hand_computed():
    # Unit codes: B_I B_I^T = I, B_I B_T^T = [[0, 1], [1, 0]], B_T B_T^T = I (scale-free: normalised).
    code_i = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    code_t = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    S = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    total, parts = reconstruction_loss(code_i, code_t, S, lambda1=0.25, lambda2=0.5)
    ii = (0.5 ** 2 * 2) / 4  # off-diagonal errors 0.5
    it = (1.0 + 1.0 + 0.25 + 0.25) / 4  # diagonal errors 1, off-diagonal 0.5
    assert parts["image_image"] == pytest.approx(ii) and parts["text_text"] == pytest.approx(ii)
    assert parts["image_text"] == pytest.approx(it)
    assert total.item() == pytest.approx(0.25 * ii + it + 0.5 * ii)


# -- against the official code ------------------------------------------------------------------
# Expected values from the official DJSRH code (zs-zhong/DJSRH @ 6041c2d, train.py:87-115 and
# models.py:22,27,40) run in isolation in a scratch folder outside the repository, on the tensors
# below. Edits to the official lines: .cuda() and Variable removed; settings.BETA/ETA/MU/LAMBDA1/
# LAMBDA2/BATCH_SIZE replaced by constants (MIRFlickr values of settings.py:33-35,58-59, and WIKI's
# settings.py:18-20 for the second case; BATCH_SIZE = 4, the batch's row count, as drop_last makes
# it); F.tanh -> torch.tanh; the AlexNets replaced by the given features F_I and the hash-layer
# outputs hid_I (code_I = tanh(alpha hid_I), alpha = sqrt(epoch + 1) at epoch 3).
F_I = torch.tensor([[1., 0., 2., 0., 1.], [0., 3., 1., 1., 0.], [2., 1., 0., 0., 1.], [0., 0., 1., 2., 2.]])
F_T = torch.tensor([[1., 1., 0.], [0., 1., 1.], [1., 0., 0.], [0., 2., 1.]])
HID_I = torch.tensor([[0.5, -0.25, 1.0], [-1.0, 0.5, 0.25], [0.75, 0.75, -0.5], [-0.25, -1.0, 0.5]])
HID_T = torch.tensor([[0.25, -0.5, 0.5], [-0.5, 1.0, -0.25], [1.0, 0.25, -0.75], [0.5, -0.5, 1.0]])
OFFICIAL_S_ROW0 = [1.083261251449585, -0.5545935034751892, 0.0645516961812973, 0.14270994067192078]
OFFICIAL_MIR = {"image_image": 0.0643521324, "image_text": 0.1644846946, "text_text": 0.2223257422, "total": 0.1931524873}
OFFICIAL_WIKI = {"image_image": 0.1872284710, "image_text": 0.5183610320, "text_text": 0.7731469870,
                 "total": 0.8064736724}


def test_loss_equals_official_code():
    alpha = alpha_at(3)
    code_i, code_t = torch.tanh(alpha * HID_I), torch.tanh(alpha * HID_T)
    S = joint_semantics_affinity(F_I, F_T, beta=0.9, eta=0.4, mu=1.5)
    assert S[0].tolist() == pytest.approx(OFFICIAL_S_ROW0, abs=1e-6)
    for official, (beta, lam) in ((OFFICIAL_MIR, (0.9, 0.1)), (OFFICIAL_WIKI, (0.3, 0.3))):
        total, parts = djsrh_objective(code_i, code_t, F_I, F_T, beta=beta, eta=0.4, mu=1.5, lambda1=lam, lambda2=lam)
        assert total.item() == pytest.approx(official["total"], abs=1e-6)
        for key in ("image_image", "image_text", "text_text"):
            assert parts[key] == pytest.approx(official[key], abs=1e-6)


class _Outputs(torch.nn.Module):
    """A stand-in network that returns fixed outputs (the official hash layers' ``hid``)."""

    def __init__(self, out):
        super().__init__()
        self.out = torch.nn.Parameter(out.clone())

    def forward(self, x):
        return self.out + 0.0 * x.sum()


def test_method_loss_equals_official_code():
    # DJSRH.loss end to end on the official features, the networks replaced by their outputs:
    # the affinity comes from the batch's features, alpha from the epoch, under the paper protocol.
    m = build(bits=3, protocol="paper", batch_size=4)
    m.image_net, m.text_net = _Outputs(HID_I), _Outputs(HID_T)
    total, parts = m.loss(Batch(index=torch.arange(4), image=F_I, text=F_T, labels=None), 3)
    assert total.item() == pytest.approx(OFFICIAL_MIR["total"], abs=1e-6) and parts["alpha"] == 2.0
    assert parts["image_text"] == pytest.approx(OFFICIAL_MIR["image_text"], abs=1e-6)


def test_alpha_schedule():
    assert [alpha_at(e) for e in (0, 3, 8)] == pytest.approx([1.0, 2.0, 3.0])
    assert alpha_at(50, "constant") == 1.0


# -- the method -------------------------------------------------------------------------------
def test_networks_are_the_hash_layer_and_the_text_mlp():
    m = build()
    assert [type(x).__name__ for x in m.image_net] == ["Linear"] and m.image_net[0].in_features == 20
    assert [type(x).__name__ for x in m.text_net] == ["Linear", "ReLU", "Linear"]
    published = DJSRH(4096, 1386, 24, 64, resolve_hparams("djsrh", "mirflickr25k")[0], "paper")
    assert published.text_net[0].out_features == 4096 and published.image_net[0].out_features == 64
    x, t = torch.randn(3, 20), torch.randn(3, 12)
    m.before_epoch(TrainView(image=x, text=t, labels=None), 8)
    assert torch.allclose(m.encode(x, t)["image"], torch.tanh(3.0 * m.image_net(x)))


def test_reads_no_label():
    assert DJSRH.reads_labels is False and get_method("djsrh") is DJSRH
    m = build(protocol="sound")
    x, t = torch.randn(6, 20), torch.randn(6, 12)
    loss, parts = m.loss(Batch(index=torch.arange(6), image=x, text=t, labels=None), 0)  # labels never touched
    assert torch.isfinite(loss) and parts["rows"] == 6
    assert m.before_epoch(TrainView(image=x, text=t, labels=None), 0) is None


def test_drop_last_by_protocol():
    x, t = torch.randn(5, 20), torch.randn(5, 12)
    batch = Batch(index=torch.arange(5), image=x, text=t, labels=None)
    paper = build(protocol="paper", batch_size=8)
    loss, parts = paper.loss(batch, 0)
    loss.backward()
    assert parts == {"rows": 0.0} and all(p.grad is None for p in paper.parameters())  # no update
    sound = build(protocol="sound", batch_size=8)
    loss, parts = sound.loss(batch, 0)
    loss.backward()
    assert parts["rows"] == 5 and sound.image_net[0].weight.grad.abs().sum() > 0
    forced = build(protocol="sound", batch_size=8, drop_last=True)
    assert forced.loss(batch, 0)[1] == {"rows": 0.0}


def test_published_settings():
    hp, src = resolve_hparams("djsrh", "mirflickr25k")
    expected = {"epochs": 80, "batch_size": 32, "eval_every": 40, "selection": "last", "lr_image": 0.001, "lr_text": 0.01,
                "momentum": 0.9, "weight_decay": 5e-4, "beta": 0.9, "eta": 0.4, "mu": 1.5, "lambda1": 0.1,
                "lambda2": 0.1, "text_hidden": [4096], "image_hidden": []}
    assert {k: hp[k] for k in expected} == expected
    wiki, src = resolve_hparams("djsrh", "wikipedia")
    assert {k: wiki[k] for k in ("beta", "lambda1", "lambda2", "epochs", "lr_image", "lr_text", "eval_every")} == {
        "beta": 0.3, "lambda1": 0.3, "lambda2": 0.3, "epochs": 200, "lr_image": 0.01, "lr_text": 0.01, "eval_every": 100}
    assert src["beta"] == "published:wikipedia"
    nus, src = resolve_hparams("djsrh", "nuswide10")
    assert nus["beta"] == 0.6 and nus["epochs"] == 80 and src["beta"] == "published:nuswide10"
    coco, src = resolve_hparams("djsrh", "mscoco")
    assert coco["beta"] == 0.9 and src["beta"] == "borrowed:mirflickr25k"
    opt, sched = build(lr_image=0.001, lr_text=0.01).configure_optimizer()
    assert isinstance(opt, torch.optim.SGD) and sched is None
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.01]
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 for g in opt.param_groups)


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="methods.djsrh.alpha_schedule"):
        build(alpha_schedule="linear")
    with pytest.raises(ConfigError, match="methods.djsrh.beta"):
        build(beta=1.5)
    with pytest.raises(ConfigError, match="methods.djsrh.drop_last"):
        build(drop_last="yes")


def test_state_dict_round_trip():
    a, b = build(seed=0), build(seed=3)
    a.before_epoch(TrainView(image=torch.zeros(1, 20), text=torch.zeros(1, 12), labels=None), 15)
    b.load_state_dict(a.state_dict())
    assert float(b.alpha) == pytest.approx(4.0)
    x, t = torch.randn(4, 20), torch.randn(4, 12)
    ca, cb = a.encode_all(x, t), b.encode_all(x, t)
    assert all(torch.equal(ca[k], cb[k]) for k in ca)


# -- through the trainer -------------------------------------------------------------------
def run_trainer(protocol="sound", rate=0.4, noise_seed=1, epochs=6):
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", rate, seed=noise_seed)
    hp = tiny_hp(epochs=epochs, eval_every=3, batch_size=32, lr_image=0.01, lr_text=0.05)
    settings = TrainSettings(method="djsrh", hp=hp, bits=16, protocol=protocol, seed=0, device="cpu", progress=False,
                             checkpoint_every=0)
    return ds, Trainer(ds, noise.noisy, noise.corrupted, settings).run()


def test_short_training_run_through_trainer():
    torch.set_num_threads(1)
    ds, result = run_trainer()
    losses = [r["loss/image_text"] for r in result.history if "loss/image_text" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert result.codes["query_image"].shape == (ds.splits.query.size, 16)
    assert result.codes["database_text"].shape == (ds.splits.database.size, 16)
    assert set(np.unique(result.codes["query_text"])) <= {-1, 1}
    assert result.selected_epoch == 6  # selection: last
    assert result.history[5]["loss/alpha"] == pytest.approx(math.sqrt(6))


def test_result_does_not_depend_on_the_noise():
    torch.set_num_threads(1)
    _, a = run_trainer(rate=0.2, noise_seed=1, epochs=2)
    _, b = run_trainer(rate=0.8, noise_seed=7, epochs=2)
    assert all(np.array_equal(a.codes[k], b.codes[k]) for k in a.codes)
