"""UCCH: each loss on hand-computed inputs and against values of the official code, the memory
bank, the schedule and clipping, the protocol quirks, a short run through the trainer, state
round trips. UCCH reads no label: every test hands it ``labels=None``."""
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError
from cmhash.methods import Batch, CellNeeds, TrainView, get_method, resolve_hparams
from cmhash.methods.base import HashingMethod, PaperSelection
from cmhash.methods.ucch import (
    PAPER_SELECTION,
    UCCH,
    bank_contrastive_loss,
    contrastive_hashing_loss,
    in_batch_keys,
    init_memory_bank,
    lr_factor,
    memory_keys,
    momentum_update,
    nce_logits,
    nce_loss,
    ranking_loss,
    ucch_objective,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

D = torch.float64
TINY = {"image_hidden": [32, 32], "text_hidden": [32], "negatives": 16}


def tiny_hp(**overrides):
    hp, _ = resolve_hparams("ucch", "mirflickr25k", {**TINY, **overrides})
    return hp


def build(seed=0, bits=8, protocol="sound", **overrides):
    torch.manual_seed(seed)
    return UCCH(20, 12, 6, bits, tiny_hp(**overrides), protocol)


def batch(index, image, text):
    return Batch(index=index, image=image, text=text, labels=None)  # UCCH must never read labels


# -- hand-computed -------------------------------------------------------------------------------
def test_ranking_loss_hand_computed():
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D)
    v = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=D)
    # S = [[1, 0.6], [0, 0.8]], margin 0.25, shift 1. Rows: references 0.75 and 0.55, so S01 = 0.6
    # and S10 = 0 are shifted. Columns: references 0.75 (S10 = 0 shifted) and 0.55 (S01 kept).
    e, log, m = math.exp, math.log, 0.25
    xy = ((-1 + log(e(1) + e(-0.4)) + m) + (-0.8 + log(e(-1) + e(0.8)) + m)) / 2
    yx = ((-1 + log(e(1) + e(-1)) + m) + (-0.8 + log(e(0.6) + e(0.8)) + m)) / 2
    got = ranking_loss(u, v, m, 1.0)
    assert [g.item() for g in got] == pytest.approx([xy, yx], rel=1e-12)
    # kappa = 0.5 scales the log-sum-exp: tau * log sum exp(M / tau)
    xy_half = ((-1 + 0.5 * log(e(2) + e(-0.8)) + m) + (-0.8 + 0.5 * log(e(-2) + e(1.6)) + m)) / 2
    assert ranking_loss(u, v, m, 1.0, tau=0.5)[0].item() == pytest.approx(xy_half, rel=1e-12)
    # shift 0: no masking at all, the plain bidirectional InfoNCE-like bound
    plain = ((-1 + log(e(1) + e(0.6)) + m) + (-0.8 + log(e(0) + e(0.8)) + m)) / 2
    assert ranking_loss(u, v, m, 0.0)[0].item() == pytest.approx(plain, rel=1e-12)


def test_nce_logits_and_loss_hand_computed():
    q = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, -0.5, 0.5, -0.5]], dtype=D)
    keys = torch.tensor([[[1, 1, 1, 1], [1, -1, 1, -1], [-1, -1, -1, -1]],
                         [[1, -1, 1, -1], [1, 1, 1, 1], [1, -1, 1, -1]]], dtype=D)
    # <key, q> / (T * sqrt(4)) with T = 0.5: the cosine with the unit key over T.
    logits = nce_logits(q, keys, 0.5)
    assert np.allclose(logits.numpy(), [[2.0, 0.0, -2.0], [2.0, 0.0, 2.0]], rtol=1e-12, atol=0)
    e = math.exp
    expected = (-math.log(e(2) / (e(2) + 1 + e(-2))) - math.log(e(2) / (e(2) + 1 + e(2)))) / 2
    assert nce_loss(logits).item() == pytest.approx(expected, rel=1e-12)
    image, text = contrastive_hashing_loss(q, q.flip(0), keys, 0.5)
    assert image.item() == pytest.approx(expected, rel=1e-12)
    assert text.item() == pytest.approx(math.log(2 + e(2)), rel=1e-12)  # text logits [0, 2, 0] in both rows


def test_momentum_update_hand_computed():
    memory = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    u = torch.tensor([[0.0, 2.0, 0.0, 0.0]])
    v = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    momentum_update(memory, torch.tensor([0]), u, v, 0.5)  # mean normalised to e2; 0.5 e1 + 0.5 e2, normalised
    r = 1 / math.sqrt(2)
    assert np.allclose(memory.numpy(), [[r, r, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    momentum_update(memory, torch.tensor([2]), u, v, 0.0)  # momentum 0 overwrites
    assert memory[2].tolist() == pytest.approx([0, 1, 0, 0])


def test_keys_layout():
    memory = torch.tensor([[0.5, -0.5], [-0.1, 0.2], [0.3, 0.0]])
    keys = memory_keys(memory, torch.tensor([2, 0]), torch.tensor([[1, 2], [0, 0]]))
    assert keys.tolist() == [[[1, 0], [-1, 1], [1, 0]], [[1, -1], [1, -1], [1, -1]]]  # own key first
    u = torch.tensor([[1.0, -1.0], [-1.0, -0.5], [0.5, 1.0]], requires_grad=True)
    v = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0]])
    k = in_batch_keys(u, v)  # c = sign((u + v) / 2) = [[1, 0], [-1, -1], [1, 1]]
    assert k.tolist() == [[[1, 0], [-1, -1], [1, 1]], [[-1, -1], [1, 0], [1, 1]], [[1, 1], [1, 0], [-1, -1]]]
    assert not k.requires_grad


def test_memory_init_bias():
    torch.manual_seed(0)
    biased = init_memory_bank(4000, 16, biased=True)
    fair = init_memory_bank(4000, 16, biased=False)
    assert torch.allclose(biased.norm(dim=1), torch.ones(4000)) and set(biased.abs().unique().tolist()) == {0.25}
    # P(N(-s, (2s)^2) > 0) = 1 - Phi(0.5) = 0.3085
    assert float((biased > 0).float().mean()) == pytest.approx(0.3085, abs=0.005)
    assert float((fair > 0).float().mean()) == pytest.approx(0.5, abs=0.005)


# -- equal to the official code ------------------------------------------------------------------
# Computed by the official NCE/NCEAverage.py, NCE/NCECriterion.py and src/utils.py
# (penghu-cs/UCCH 0c20e62b99875cd2ec9d7a496eae80b3ab8ba61b) run in isolation on CPU in float64, on
# the tensors below. Edits to that scratch copy: (1) NCEAverage.py:14 `self.multinomial.cuda()`
# removed (device call); (2) src/utils.py:10 `from .logger import create_logger, PD_Stats` removed
# (a relative import ContrastiveLoss does not use). Calls: ContrastiveLoss(margin, shift=shift)(U, V);
# c = NCEAverage(4, 6, K=3, T=0.9, momentum=0.4).double(); c.memory.copy_(MEM);
# out_l, out_ab = c(l, ab, y, idx=IDX, epoch=e) (IDX passed explicitly, column 0 = y, instead of the
# alias sampler's draw; e = 0 for the bank branch, e = -1 for the warm-up branch, i.e.
# UCCH.py:156's epoch - warmup_epoch); NCESoftmaxLoss()(out_l) and (out_ab);
# total = (l_loss + ab_loss) * 0.7 + ContrastiveLoss(0.2, shift=0.1)(l, ab) * 0.3, then backward.
# The official T is float32(0.9 * 2) = 1.7999999523 (NCEAverage.py:17): hence rel=1e-6.
U = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.6, -0.8], [-0.48, 0.6, 0.64], [1.0, 0.0, 0.0]], dtype=D)
V = torch.tensor([[0.8, 0.6, 0.0], [0.0, 0.8, -0.6], [0.6, 0.0, 0.8], [0.0, -1.0, 0.0]], dtype=D)
OFFICIAL_RANKING = {(0.2, 0.1): 2.517551452700128, (0.2, 1.0): 1.9949223289452458, (0.5, 1.0): 2.7728372992063726}

MEM = torch.tensor([[0.5, -0.5, 0.5, 0.5], [0.1, 0.7, -0.7, 0.1], [-0.6, 0.0, 0.8, 0.0], [0.5, 0.5, 0.5, -0.5],
                    [-0.1, -0.7, 0.1, 0.7], [0.7, -0.1, -0.1, -0.7]], dtype=D)
L2 = [[0.6, 0.0, -0.8, 0.0], [0.0, -0.6, 0.0, 0.8]]
AB2 = [[0.5, 0.5, -0.5, 0.5], [-0.28, -0.96, 0.0, 0.0]]
Y2, IDX2 = [1, 4], [[1, 0, 3, 5], [4, 4, 2, 1]]  # row 4 draws itself as a negative
OFFICIAL_BANK = {
    "l_loss": 1.063522067123043, "ab_loss": 0.8651466143407036, "rank": 1.1644393538579587,
    "total": 1.69939988318201,
    "memory": [[0.5, -0.5, 0.5, 0.5], [0.421893607367, 0.469351207371, -0.745340545615, 0.214901603684],
               [-0.6, 0.0, 0.8, 0.0], [0.5, 0.5, 0.5, -0.5],
               [-0.136397523161, -0.81782331634, 0.04052598111, 0.557600559344], [0.7, -0.1, -0.1, -0.7]],
    "grad_l": [[-0.069722704303, -0.322916331682, 0.158830435547, -0.239976315988],
               [0.14677993079, 0.244205295558, -0.119036976985, 0.021825310677]],
    "grad_ab": [[-0.054638239671, -0.191069449406, 0.201670519046, -0.045819644035],
                [0.086378264969, 0.134172668701, -0.103657434905, -0.119448309116]],
}
L3 = [[0.6, 0.0, -0.8, 0.0], [0.0, -0.6, 0.0, 0.8], [0.5, 0.5, 0.5, 0.5]]
AB3 = [[0.5, 0.5, -0.5, 0.5], [-0.28, -0.96, 0.0, 0.0], [-0.8, 0.0, 0.6, 0.0]]
Y3 = [0, 2, 5]
OFFICIAL_WARMUP = {
    "l_loss": 0.6760704423645977, "ab_loss": 0.5268215179217854, "rank": 1.9543875762103071,
    "total": 1.4283406450635603,
    "memory": [[0.596558759001, 0.271163072273, -0.705023987911, 0.271163072273], [0.1, 0.7, -0.7, 0.1],
               [-0.157712068171, -0.878681522666, 0.0, 0.450605909059], [0.5, 0.5, 0.5, -0.5],
               [-0.1, -0.7, 0.1, 0.7], [-0.22360679775, 0.37267799625, 0.81989159175, 0.37267799625]],
    "grad_l": [[-0.172224634411, -0.149323237466, 0.12530403541, -0.046185831903],
               [0.060827399421, 0.244932917436, 0.017092069829, 0.024297060523],
               [0.246342083656, -0.032273570093, -0.252452797608, 0.044795108523]],
    "grad_ab": [[-0.105647785494, -0.025314812374, 0.193235611166, 0.083670405359],
                [0.086815848771, 0.168687762923, -0.016264742498, -0.058372646321],
                [-0.020749337978, -0.202784711053, -0.16277859523, -0.009837872882]],
}
# torch.manual_seed(0); NCEAverage(4, 5, 3, 0.9, 0.4).memory * 2 (the biased init, NCEAverage.py:18-20)
OFFICIAL_INIT_SEED0 = [[-1, -1, -1, -1], [1, -1, -1, 1], [-1, -1, 1, -1], [1, 1, 1, -1], [1, 1, 1, -1]]


@pytest.mark.parametrize(("margin", "shift"), sorted(OFFICIAL_RANKING))
def test_ranking_loss_equals_official(margin, shift):
    xy, yx = ranking_loss(U, V, margin, shift)
    assert (xy + yx).item() == pytest.approx(OFFICIAL_RANKING[(margin, shift)], rel=1e-12)


def _official_case(l, ab, contrastive_of, y, expected, momentum):
    u = torch.tensor(l, dtype=D, requires_grad=True)
    v = torch.tensor(ab, dtype=D, requires_grad=True)
    c_image, c_text = contrastive_of(u, v)
    assert c_image.item() == pytest.approx(expected["l_loss"], rel=1e-6)
    assert c_text.item() == pytest.approx(expected["ab_loss"], rel=1e-6)
    assert sum(ranking_loss(u, v, 0.2, 0.1)).item() == pytest.approx(expected["rank"], rel=1e-12)
    total, _ = ucch_objective(u, v, (c_image, c_text), alpha=0.7, margin=0.2, shift=0.1)
    assert total.item() == pytest.approx(expected["total"], rel=1e-6)
    total.backward()
    assert np.allclose(u.grad.numpy(), expected["grad_l"], rtol=1e-5, atol=1e-8)
    assert np.allclose(v.grad.numpy(), expected["grad_ab"], rtol=1e-5, atol=1e-8)
    memory = MEM.clone()
    momentum_update(memory, torch.tensor(y), u, v, momentum)
    assert np.allclose(memory.numpy(), expected["memory"], atol=1e-11)


@pytest.mark.parametrize("path", ["keys", "gathered"])
def test_bank_branch_equals_official(path):
    idx = torch.tensor(IDX2)
    if path == "keys":  # the official layout: a (B, 1 + K, bits) key tensor
        def contrastive_of(u, v):
            return contrastive_hashing_loss(u, v, memory_keys(MEM, idx[:, 0], idx[:, 1:]), 0.9)
    else:  # what UCCH.loss uses: logits gathered from u @ sign(memory)^T
        def contrastive_of(u, v):
            return bank_contrastive_loss(u, v, MEM, idx, 0.9)
    _official_case(L2, AB2, contrastive_of, Y2, OFFICIAL_BANK, 0.4)


def test_warm_up_branch_equals_official():
    _official_case(L3, AB3, lambda u, v: contrastive_hashing_loss(u, v, in_batch_keys(u, v), 0.9), Y3,
                   OFFICIAL_WARMUP, 0.0)


def test_biased_init_equals_official():
    torch.manual_seed(0)
    assert (init_memory_bank(5, 4, biased=True) * 2).tolist() == OFFICIAL_INIT_SEED0


# -- the method ------------------------------------------------------------------------------------
def test_registered_label_free_and_published_defaults():
    assert get_method("ucch") is UCCH
    assert UCCH.reads_labels is False and HashingMethod.reads_labels is True
    assert UCCH.needs("paper") == UCCH.needs("sound") == CellNeeds(labels=False) and UCCH.paper_denominator == "skip"
    hp, src = resolve_hparams("ucch", "mirflickr25k")
    expected = {"epochs": 20, "batch_size": 256, "eval_every": 1, "selection": "best", "optimizer": "adam",
                "lr": 1e-4, "weight_decay": 1e-6, "alpha": 0.7, "shift": 0.1, "margin": 0.2, "negatives": 4096,
                "temperature": 0.9, "momentum": 0.4, "tau": 1.0, "warmup_epochs": 1, "max_grad_norm": 1.0,
                "image_hidden": [8192, 8192], "text_hidden": [8192], "lr_schedule": "multistep",
                "milestones": [30, 60, 90, 120], "gamma": 0.1}
    assert {k: hp[k] for k in expected} == expected
    assert src["alpha"] == src["shift"] == "published:mirflickr25k" and src["negatives"] == "published"
    for family in ("nuswide21", "nuswide10", "mscoco", "iaprtc12", "wikipedia"):
        hp, src = resolve_hparams("ucch", family)
        assert (hp["alpha"], hp["shift"]) == (0.7, 0.1) and src["alpha"] == "borrowed:mirflickr25k"
    assert UCCH.defaults["alpha"] == 0.9 and UCCH.defaults["shift"] == 1.0  # utils/config.py defaults
    assert UCCH.paper_selection is PAPER_SELECTION and not UCCH.paper_scores_untrained
    assert (PAPER_SELECTION.split, PAPER_SELECTION.rows, PAPER_SELECTION.ties, PAPER_SELECTION.patience) == \
        ("database_head", 2000, "later", None)


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="methods.ucch.optimizer"):
        build(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="methods.ucch.momentum"):
        build(momentum=1.0)
    with pytest.raises(ConfigError, match="methods.ucch.drop_last"):
        build(drop_last="sometimes")


def test_quirks_follow_the_protocol_unless_forced():
    for key in UCCH.QUIRKS:
        assert build(protocol="paper").quirk(key) and not build(protocol="sound").quirk(key)
    assert build(protocol="sound", drop_last=True).quirk("drop_last")
    assert not build(protocol="paper", biased_memory_init=False).quirk("biased_memory_init")


def test_lr_schedule_and_its_lag():
    # MultiStepLR at 30/60/90/120: the published step(epoch) after each epoch moves it one epoch late.
    sound = [lr_factor(e, "multistep", [30, 60, 90, 120], 0.1, 100, lag=False) for e in (0, 29, 30, 31, 60, 61)]
    paper = [lr_factor(e, "multistep", [30, 60, 90, 120], 0.1, 100, lag=True) for e in (0, 29, 30, 31, 60, 61)]
    assert sound == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01]) and paper == pytest.approx([1, 1, 1, 0.1, 0.1, 0.01])
    assert lr_factor(1, "cos", [], 0.1, 20, lag=True) == 1.0
    assert lr_factor(10, "cos", [], 0.1, 20, lag=False) == pytest.approx(0.5)
    m = build(protocol="paper", lr_schedule="cos", epochs=4)
    opt, sched = m.configure_optimizer()
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-4 * (1 + math.cos(math.pi / 4)) / 2, 1e-4 * 0.5])
    assert isinstance(build().configure_optimizer()[0], torch.optim.Adam)
    sgd = build(optimizer="sgd").configure_optimizer()[0]
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9


def test_gradient_norm_clipped_before_each_step():
    m = build()
    opt, _ = m.configure_optimizer()
    for p in m.parameters():
        p.grad = torch.full_like(p, 10.0)
    opt.step()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in m.parameters()]))
    assert norm.item() == pytest.approx(1.0, rel=1e-4)
    unclipped = build(max_grad_norm=None)
    opt, _ = unclipped.configure_optimizer()
    for p in unclipped.parameters():
        p.grad = torch.full_like(p, 10.0)
    opt.step()
    assert all(torch.all(p.grad == 10.0) for p in unclipped.parameters())


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 20, generator=g), torch.randn(n, 12, generator=g)


def test_loss_reads_no_label_and_updates_the_bank():
    m = build()
    image, text = _data()
    assert m.before_epoch(TrainView(image=image, text=text, labels=None), 0) is None  # labels never touched
    assert m.memory.shape == (40, 8) and torch.allclose(m.memory.norm(dim=1), torch.ones(40))
    idx = torch.arange(8)
    before = m.memory.clone()
    loss, parts = m.loss(batch(idx, image[idx], text[idx]), 0)  # warm-up: in-batch keys, momentum 0
    assert torch.isfinite(loss) and parts["rows"] == 8
    codes = m.encode(image[idx], text[idx])
    assert torch.allclose(m.memory[idx], torch.nn.functional.normalize(codes["image"] + codes["text"], dim=1), atol=1e-6)
    assert torch.equal(m.memory[8:], before[8:])
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    idx = torch.arange(8, 16)
    loss, parts = m.loss(batch(idx, image[idx], text[idx]), 1)  # after warm-up: bank keys, momentum 0.4
    assert torch.isfinite(loss) and {"contrastive_image", "contrastive_text", "ranking_i2t", "ranking_t2i"} <= set(parts)
    with pytest.raises(ValueError, match="memory bank"):
        m.before_epoch(TrainView(image=image[:10], text=text[:10], labels=None), 1)
    with pytest.raises(RuntimeError, match="not initialised"):
        build().loss(batch(idx, image[idx], text[idx]), 0)


def test_drop_last_short_batch_under_paper_only():
    image, text = _data()
    idx = torch.arange(5)
    for protocol, dropped in (("paper", True), ("sound", False)):
        m = build(protocol=protocol, batch_size=8)
        m.init_memory(40)
        before = m.memory.clone()
        loss, parts = m.loss(batch(idx, image[idx], text[idx]), 2)
        loss.backward()
        assert (parts["rows"] == 0) is dropped
        assert (torch.equal(m.memory, before) and all(p.grad is None for p in m.parameters())) is dropped


def test_state_dict_round_trip():
    a = build(seed=0)
    image, text = _data()
    a.before_epoch(TrainView(image=image, text=text, labels=None), 0)
    idx = torch.arange(10)
    a.loss(batch(idx, image[idx], text[idx]), 0)
    b = build(seed=5)  # a fresh method: its bank is empty until loaded
    assert b.memory.shape == (0, 8)
    b.load_state_dict(a.state_dict())
    assert "memory" in a.state_dict() and torch.equal(a.memory, b.memory)
    ca, cb = a.encode_all(image, text), b.encode_all(image, text)
    assert all(torch.equal(ca[k], cb[k]) for k in ca)
    idx = torch.arange(10, 20)
    torch.manual_seed(3)
    la, _ = a.loss(batch(idx, image[idx], text[idx]), 3)
    torch.manual_seed(3)
    lb, _ = b.loss(batch(idx, image[idx], text[idx]), 3)
    assert la.item() == pytest.approx(lb.item(), rel=1e-6) and torch.equal(a.memory, b.memory)


# -- through the trainer -----------------------------------------------------------------------
def run_trainer(protocol, epochs=8):
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    hp = tiny_hp(epochs=epochs, eval_every=4, batch_size=32, lr=1e-3)
    settings = TrainSettings(method="ucch", hp=hp, bits=16, protocol=protocol, seed=0, device="cpu", progress=False,
                             checkpoint_every=0)
    return ds, Trainer(ds, noise.noisy, noise.corrupted, settings).run()


def test_paper_selection_split_is_the_database_head_against_itself(monkeypatch):
    """UCCH.py:199-201: the first 2,000 retrieval rows queried against themselves, clean labels."""
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    hp = tiny_hp(epochs=1, batch_size=32)
    monkeypatch.setattr(UCCH, "paper_selection", PaperSelection(split="database_head", rows=50, ties="later"))
    trainer = Trainer(ds, noise.noisy, noise.corrupted,
                      TrainSettings(method="ucch", hp=hp, bits=16, protocol="paper", seed=0, device="cpu", progress=False))
    q, db = trainer.paper_selection_rows()
    assert q is db and np.array_equal(q, ds.splits.database[:50])
    seen = []
    original = trainer._encode_rows
    monkeypatch.setattr(trainer, "_encode_rows", lambda rows: seen.append(rows.copy()) or original(rows))
    trainer.selection_scores()
    assert len(seen) == 1 and np.array_equal(seen[0], ds.splits.database[:50])  # encoded once, used both ways


@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_short_training_run_through_trainer(protocol):
    torch.set_num_threads(1)
    ds, result = run_trainer(protocol)
    losses = [r["loss/total"] for r in result.history if "loss/total" in r]
    # Epoch 0 is the warm-up (in-batch keys, a 32-way softmax); from epoch 1 on, 1 + K bank keys.
    assert len(losses) == 8 and losses[-1] < losses[1]
    scored = {int(r["epoch"]): r["select_map/i2t"] + r["select_map/t2i"] for r in result.history if "select_map/i2t" in r}
    if protocol == "sound":
        assert result.selected_epoch == 8  # a label-free method keeps its last epoch under sound
    else:  # the official selection: never the untrained model; the best, a later one on a tie (UCCH.py:231-235)
        assert sorted(scored) == [4, 8]
        best = max(scored.values())
        assert result.selected_epoch == max(e for e, v in scored.items() if v == best)
    assert result.codes["query_image"].shape == (ds.splits.query.size, 16)
    assert result.codes["database_text"].shape == (ds.splits.database.size, 16)
    assert set(np.unique(result.codes["query_text"])) <= {-1, 1}


def test_resume_from_checkpoint_gives_identical_codes(tmp_path):
    """The bank, the RNG and the schedule survive a checkpoint: resuming gives the same codes."""
    torch.set_num_threads(1)
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.4, seed=1)
    hp = tiny_hp(epochs=4, eval_every=2, batch_size=32, lr=1e-3)

    def trainer(path):
        settings = TrainSettings(method="ucch", hp=hp, bits=16, protocol="paper", seed=0, device="cpu",
                                 progress=False, checkpoint_every=2)
        return Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=path)

    full = trainer(tmp_path / "a.pt").run()
    first = trainer(tmp_path / "b.pt")
    original_save = first._save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(next_epoch, state):
        original_save(next_epoch, state)
        raise Stop

    first._save_checkpoint = save_then_stop
    with pytest.raises(Stop):
        first.run()
    resumed = trainer(tmp_path / "b.pt").run()
    assert resumed.resumed_from == 2
    for key in full.codes:
        assert np.array_equal(full.codes[key], resumed.codes[key])
