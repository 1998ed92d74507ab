"""DCGMH: its losses and scores on hand-computed cases, the correction rule, the protocols, the
ablation variants, the per-row state, and the flagged/correction diagnostics."""
import math

import numpy as np
import pytest
import torch

from cmhash import diagnostics as d
from cmhash.errors import ConfigError
from cmhash.methods import FUSED, Batch, CellNeeds, TrainView, get_method, resolve_hparams
from cmhash.methods.dcgmh import (
    DCGMH,
    _StepAtEpochStart,
    augment_image,
    augment_text,
    augmentation_contrastive_loss,
    centre_separation_loss,
    centre_similarity,
    code_to_centre_loss,
    consistency_scores,
    estimate_noise_rate,
    flag_lowest,
    label_affinity,
    neighbour_correction,
    pairwise_reconstruction_loss,
    quantisation_loss,
)
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

torch.set_num_threads(1)

TINY = {**DCGMH.defaults, "epochs": 5, "warmup": 2, "batch_size": 32, "eval_every": 2, "image_hidden": [16],
        "text_hidden": [16], "fusion_per_bit": 2, "lr": 0.05, "oracle_noise_rate": 0.4}


def T(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ----------------------------------------------------------------------------- losses
def test_code_to_centre_loss_hand_computed():
    # L = 2 bits; centres (2,0), (0,2), (-2,0); z = h.C / L.
    centres = T([[2, 0], [0, 2], [-2, 0]])
    h = T([[1, 0], [0, 1], [1, 1]])
    y = T([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    # row 0: z = (1, 0, -1), positives 0 and 1, negative sum e^-1:
    #   class 0: -log(e / (e^-1 + e)) = log(1 + e^-2) = 0.126928
    #   class 1: -log(1 / (e^-1 + 1)) = log(1 + e^-1) = 0.313262   -> mean 0.220095
    # row 1: z = (0, 1, 0), positive 1, negatives e^0 + e^0 = 2: -log(e / (2 + e)) = log(1 + 2/e) = 0.551444
    # row 2: no positive label -> left out.        loss = (0.220095 + 0.551444) / 2 = 0.385770
    row0 = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2
    row1 = math.log1p(2 / math.e)
    assert row0 == pytest.approx(0.220095, abs=1e-6) and row1 == pytest.approx(0.551444, abs=1e-6)
    assert code_to_centre_loss(h, centres, y).item() == pytest.approx((row0 + row1) / 2, abs=1e-4)
    assert code_to_centre_loss(h[:1], centres, y[:1]).item() == pytest.approx(0.220095, abs=1e-4)
    assert code_to_centre_loss(h[2:], centres, y[2:]).item() == 0.0


def test_centre_separation_loss_hand_computed():
    # centres (0,0), (2,0), (0,4), L = 2: distances 2, 4, sqrt(20) -> / L = 1, 2, 2.236068.
    # -(sum of upper triangle / K^2 = 5.236068 / 9 = 0.581785) - (smallest = 1) = -1.581785
    c = T([[0, 0], [2, 0], [0, 4]]).requires_grad_()
    loss = centre_separation_loss(c)
    assert loss.item() == pytest.approx(-(1 + 2 + math.sqrt(5)) / 9 - 1, abs=1e-6)
    assert loss.item() == pytest.approx(-1.581785, abs=1e-6)
    loss.backward()
    assert torch.isfinite(c.grad).all()
    many = torch.randn(80, 64, requires_grad=True)  # COCO's 80 classes: gradients stay finite
    centre_separation_loss(many).backward()
    assert torch.isfinite(many.grad).all()


def test_quantisation_reconstruction_and_contrastive_hand_computed():
    # sign = (1,-1),(1,-1): squared gaps .25 .25 0 .64 -> mean 0.285
    assert quantisation_loss(T([[0.5, -0.5], [1.0, -0.2]])).item() == pytest.approx(0.285)
    # label affinity 2 sigmoid(y.y') - 1: y.y' = [[1,1],[1,2]] -> 0.462117, 0.761594
    y = T([[1, 0], [1, 1]])
    a1, a2 = 2 / (1 + math.exp(-1)) - 1, 2 / (1 + math.exp(-2)) - 1
    assert (a1, a2) == (pytest.approx(0.462117, abs=1e-6), pytest.approx(0.761594, abs=1e-6))
    assert torch.allclose(label_affinity(y, y), T([[a1, a1], [a1, a2]]))
    # cos(h) = [[1, .707107], [.707107, 1]]: MSE = ((1-a1)^2 + 2 (.707107-a1)^2 + (1-a2)^2) / 4 = 0.116549
    h = T([[1, 0], [1, 1]])
    c = 1 / math.sqrt(2)
    expected = ((1 - a1) ** 2 + 2 * (c - a1) ** 2 + (1 - a2) ** 2) / 4
    assert expected == pytest.approx(0.116549, abs=1e-6)
    assert pairwise_reconstruction_loss(h, y).item() == pytest.approx(expected, abs=1e-6)
    # contrastive, margin 0.5: cos(h_aug, h) = [[1, 0], [.707107, .707107]]
    # positive (0 + 0.292893) / 2 = 0.146447; negatives: relu(0 - .5) = 0, relu(.707107 - .5) = .207107,
    # averaged over all 4 entries (diagonal zeroed, published) = 0.051777 -> 0.198223
    loss = augmentation_contrastive_loss(T([[1, 0], [1, 1]]), T([[1, 0], [0, 1]]), margin=0.5)
    assert loss.item() == pytest.approx((1 - c) / 2 + (c - 0.5) / 4, abs=1e-6)
    assert loss.item() == pytest.approx(0.198223, abs=1e-6)


# ----------------------------------------------------------------------------- scores
def test_centre_similarity_and_consistency_hand_computed():
    # h = (3, 4): cos with (1, 0) = 0.6, with (0, -2) = -0.8
    assert torch.allclose(centre_similarity(T([[3, 4]]), T([[1, 0], [0, -2]])), T([[0.6, -0.8]]))
    sim = T([[0.5, -0.2, 0.9], [0.1, 0.3, -0.4], [0.2, 0.2, 0.2]])
    y = T([[1, 0, 1], [0, 1, 1], [0, 0, 0]])
    # (0.5 + 0.9) / 2 = 0.7; (0.3 - 0.4) / 2 = -0.05; no label -> -1
    assert torch.allclose(consistency_scores(sim, y), T([0.7, -0.05, -1.0]))


def test_flag_lowest_counts_and_ties():
    s = T([0.7, -0.05, -1.0, 0.2, 0.2])
    assert flag_lowest(s, 0.4).tolist() == [False, True, True, False, False]  # int(5 * .4) = 2 lowest
    assert flag_lowest(s, 0.5).tolist() == [False, True, True, False, False]  # int(2.5) = 2
    assert flag_lowest(s, 0.0).sum() == 0
    assert flag_lowest(T([0.1, 0.1, 0.1]), 0.34).tolist() == [True, False, False]  # ties: by position


def test_correction_rule_hand_computed():
    profiles = T([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.85, -0.5]])
    eligible = torch.tensor([True, True, True, False, True])  # row 3 was flagged once
    clean = T([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]])
    noisy = T([[1, 0], [1, 1], [0, 1], [1, 0], [1, 0]])
    query = T([[1, 0],    # dots (1, .9, 0, .1, .85): neighbours 0, 1 -> eligible; clean (1,0) == (1,0)
               [0, 1],    # dots (0, .1, 1, .9, -.5): neighbours 2, 3 -> 3 not eligible -> unlabelled
               [1, -1]])  # dots (1, .8, -1, -.8, 1.35): neighbours 4, 0 -> clean (1,1) != (1,0) -> unlabelled
    ok, labels, nb = neighbour_correction(query, profiles, eligible, clean, noisy, k=2)
    assert nb.tolist() == [[0, 1], [2, 3], [4, 0]]
    assert ok.tolist() == [True, False, False]
    assert labels[0].tolist() == [1, 0]  # the NEAREST neighbour's noisy label is adopted
    # sound: agreement on the noisy labels: row 0's neighbours carry (1,0) and (1,1) -> unlabelled;
    # row 2's neighbours 4 and 0 both carry the noisy (1,0) -> corrected to (1,0)
    ok_sound, labels_sound, _ = neighbour_correction(query, profiles, eligible, noisy, noisy, k=2)
    assert ok_sound.tolist() == [False, False, True]
    assert labels_sound[2].tolist() == [1, 0]
    # agreeing eligible neighbours whose adopted label is empty leave the row unlabelled
    ok_empty, _, _ = neighbour_correction(T([[1, 0]]), T([[1, 0], [1, 0]]), torch.tensor([True, True]),
                                          T([[1, 0], [1, 0]]), T([[0, 0], [0, 0]]))
    assert ok_empty.tolist() == [False]


def test_noise_rate_estimate_recovers_the_smaller_mode():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(-0.3, 0.05, 300), rng.normal(0.5, 0.05, 700)])
    est, params = estimate_noise_rate(scores, random_state=0)
    assert est == pytest.approx(0.3, abs=0.01)
    assert params["gmm_mean_low"] == pytest.approx(-0.3, abs=0.02)
    assert estimate_noise_rate(scores, 0)[0] == est  # deterministic


def test_augmentations_follow_the_published_recipe():
    torch.manual_seed(0)
    x = torch.zeros(2000, 50)
    a = augment_image(x)
    # zeros + N(0, .1) scaled by one factor in [.8, 1.2] + N(0, .05): std in [.094, .130]
    assert 0.094 < a.std().item() < 0.130
    torch.manual_seed(0)
    assert torch.equal(augment_image(x), a)  # every draw from torch's seeded global RNG
    t = torch.arange(12.0).repeat(1000, 1)
    torch.manual_seed(1)
    b = augment_text(t)
    assert t.equal(torch.arange(12.0).repeat(1000, 1))  # input untouched
    assert (b == 0).float().mean().item() == pytest.approx(0.1, abs=0.01)  # 10% deleted
    # column swaps are the same for every row: the per-column means are a permutation of 0..11
    kept = b != 0
    means = (b * kept).sum(0) / kept.sum(0)
    assert sorted(means.round().tolist()) == [float(v) for v in range(12)]


# ----------------------------------------------------------------------------- configuration
def test_registration_and_published_hyper_parameters():
    assert get_method("dcgmh") is DCGMH and DCGMH.task == FUSED
    assert DCGMH.paper_denominator == "zero"
    assert DCGMH.needs("paper") == CellNeeds(clean_labels=True, true_noise_rate=True)
    assert DCGMH.needs("sound") == CellNeeds()  # no oracle, no clean label
    hp, src = resolve_hparams("dcgmh", "nuswide21")
    assert (hp["warmup"], hp["lr"], hp["alpha"], hp["beta"], hp["gamma"], hp["eta"]) == (5, 0.001, 1, 0.05, 5, 1.5)
    assert src["eta"] == "published:nuswide21"
    hp, _ = resolve_hparams("dcgmh", "mscoco")
    assert (hp["warmup"], hp["lr"], hp["alpha"], hp["beta"], hp["gamma"], hp["eta"]) == (30, 0.01, 1, 0.2, 5, 1.2)
    hp, src = resolve_hparams("dcgmh", None)  # the embedded set: no published family, MIRFlickr borrowed
    assert (hp["warmup"], hp["lr"], hp["beta"], hp["eta"]) == (5, 0.005, 0.15, 1) and src["lr"] == "borrowed:mirflickr25k"
    assert (hp["epochs"], hp["batch_size"], hp["margin"], hp["momentum"], hp["weight_decay"]) == (150, 48, 0.7, 0.9, 1e-5)
    assert (hp["eval_every"], hp["selection"], hp["lr_step_size"], hp["lr_decay"]) == (5, "last", 100, 0.1)
    assert resolve_hparams("dcgmh", "wikipedia")[1]["lr"] == "borrowed:mirflickr25k"


def test_learning_rate_steps_one_epoch_early_as_published():
    quirk, plain = _StepAtEpochStart(100, 0.1, 1), _StepAtEpochStart(100, 0.1, 0)
    assert [quirk(e) for e in (0, 98, 99, 149)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1)]
    assert [plain(e) for e in (99, 100)] == [1.0, pytest.approx(0.1)]


def test_network_shape_and_configuration_errors():
    m = DCGMH(20, 12, 6, 8, TINY, "sound")
    kinds = [type(x).__name__ for x in m.net.image]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU"]  # BN + ReLU on every layer
    assert m.net.image[3].out_features == m.net.text[3].out_features == 2 * 8  # fusion_per_bit * bits
    assert [type(x).__name__ for x in m.net.hash] == ["Linear", "BatchNorm1d", "Tanh"]
    assert m.centres.shape == (6, 8)
    out = m.encode(torch.randn(5, 20), torch.randn(5, 12))
    assert set(out) == {"fused"} and out["fused"].shape == (5, 8) and m.directions() == [("fused", "fused", "fused")]
    with pytest.raises(ConfigError, match="oracle_noise_rate"):
        DCGMH(20, 12, 6, 8, {**TINY, "oracle_noise_rate": 1.5}, "paper")
    DCGMH(20, 12, 6, 8, {**TINY, "oracle_noise_rate": None}, "sound")  # no oracle needed
    DCGMH(20, 12, 6, 8, {**TINY, "oracle_noise_rate": None, "variant": "no_filtering"}, "paper")
    with pytest.raises(ConfigError, match="methods.dcgmh.variant"):
        DCGMH(20, 12, 6, 8, {**TINY, "variant": "half"}, "sound")


# ----------------------------------------------------------------------------- training
def run_cell(protocol, variant, rate=0.4, **kw):
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "dcgmh", rate, seed=1)
    hp = {**TINY, "variant": variant, "oracle_noise_rate": rate, **kw.pop("hp", {})}
    settings = TrainSettings(method="dcgmh", hp=hp, bits=16, protocol=protocol, seed=0, device="cpu",
                             progress=False, checkpoint_every=2)
    trainer = Trainer(ds, noise.noisy, noise.corrupted, settings, **kw)
    return ds, trainer, trainer.run()


@pytest.mark.parametrize("protocol", ["sound", "paper"])
@pytest.mark.parametrize("variant", ["full", "filter_only", "no_filtering"])
def test_trainer_runs_every_variant_and_protocol(protocol, variant):
    ds, trainer, result = run_cell(protocol, variant)
    assert (trainer.view.clean_labels is None) == (protocol == "sound")  # the trainer never leaks under sound
    losses = [r for r in result.history if "loss/total" in r]
    assert losses[-1]["loss/total"] < losses[0]["loss/total"]
    assert losses[-1]["loss/code_centre"] < losses[0]["loss/code_centre"]
    assert result.codes["query_fused"].shape == (ds.splits.query.size, 16)
    assert result.codes["database_fused"].shape == (ds.splits.database.size, 16)
    assert set(result.codes) == {"query_fused", "database_fused"} and result.selected_epoch == 5
    last = result.history[-2]  # epoch 4: reports epoch 3's decisions
    if variant == "no_filtering":
        assert "select/flagged_fraction" not in last and "loss/contrastive" not in last and "select/auc" in last
        return
    assert last["loss/flagged"] > 0 and "select/flagged_precision" in last and "select/auc" in last
    assert last["select/kept_fraction"] == pytest.approx(1 - last["select/flagged_fraction"])
    if protocol == "paper":
        assert last["select/flag_rate"] == 0.4 and "select/noise_rate_estimate" not in last
        # flagged count per batch = int(B * 0.4): batches of 32 (12 flagged) and a last one of 160 - 4*32 = 32
        assert last["loss/flagged"] == 12.0
    else:
        assert 0.0 < last["select/noise_rate_estimate"] < 1.0
        assert last["select/flag_rate"] == last["select/noise_rate_estimate"]
    if variant == "filter_only":
        assert last["loss/corrected"] == 0 and last["loss/reconstruction"] == 0.0
        assert last["select/corrected_fraction"] == 0.0


class _NoCleanView:
    """A training view whose clean labels cannot be read at all."""

    def __init__(self, view: TrainView) -> None:
        self.image, self.text, self.labels = view.image, view.text, view.labels

    @property
    def clean_labels(self):
        raise AssertionError("a clean training label was read")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _drive(method, view, epochs, batch=32, seed=0):
    """A minimal training loop (what the trainer does) over ``view``."""
    torch.manual_seed(seed)
    opt, sched = method.configure_optimizer()
    n = len(view)
    for epoch in range(epochs):
        method.train()
        method.before_epoch(view, epoch)
        order = torch.randperm(n)
        for b in range(0, n - 1, batch):
            idx = order[b:b + batch]
            loss, _ = method.loss(Batch(idx, view.image[idx], view.text[idx], view.labels[idx]), epoch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()


def _view(seed=0):
    ds = clustered_dataset(seed=seed)
    rows = ds.splits.train
    noise = corrupt(ds.labels[rows], "dcgmh", 0.4, seed=1)
    return TrainView(torch.as_tensor(ds.image[rows]), torch.as_tensor(ds.text[rows]),
                     torch.as_tensor(noise.noisy, dtype=torch.float32),
                     clean_labels=torch.as_tensor(ds.labels[rows], dtype=torch.float32)), noise


def test_sound_never_reads_a_clean_label_and_paper_requires_them():
    view, _ = _view()
    torch.manual_seed(0)
    sound = DCGMH(20, 12, 6, 16, {**TINY, "oracle_noise_rate": None}, "sound")
    _drive(sound, _NoCleanView(view), epochs=5)
    assert sound.flagged.any() and (sound.visit_state >= 1).any()
    assert (sound.visit_state == 1).any()  # some rows were corrected from noisy labels alone
    paper = DCGMH(20, 12, 6, 16, TINY, "paper")
    with pytest.raises(ConfigError, match="no clean labels"):
        paper.before_epoch(TrainView(view.image, view.text, view.labels), 0)
    with pytest.raises(AssertionError, match="clean training label was read"):
        DCGMH(20, 12, 6, 16, TINY, "paper").before_epoch(_NoCleanView(view), 0)


def test_flagged_rows_stay_flagged_and_state_dict_round_trip():
    view, _ = _view()
    torch.manual_seed(0)
    m = DCGMH(20, 12, 6, 16, TINY, "paper")
    _drive(m, view, epochs=3)
    first = m.flagged.clone()
    _drive(m, view, epochs=4)  # epochs 0..3 again: 2 more post-warm-up epochs
    assert (m.flagged | first).equal(m.flagged)  # remembered: never unflagged
    state = m.state_dict()
    assert {"profiles", "flagged", "visit_state", "corrected_labels", "centres"} <= set(state)
    fresh = DCGMH(20, 12, 6, 16, TINY, "paper")
    assert fresh.flagged.numel() == 0  # allocated at the first epoch
    fresh.load_state_dict(state)
    assert fresh.flagged.equal(m.flagged) and fresh.profiles.equal(m.profiles)
    assert fresh.visit_state.equal(m.visit_state)
    assert torch.equal(torch.isnan(fresh.corrected_labels), torch.isnan(m.corrected_labels))
    fresh.before_epoch(view, 5)  # a loaded state is not re-allocated
    assert fresh.flagged.equal(m.flagged)
    x = (view.image[:7], view.text[:7])
    m.eval(), fresh.eval()
    assert torch.equal(m.encode(*x)["fused"], fresh.encode(*x)["fused"])


def test_resume_from_checkpoint_is_identical(tmp_path):
    _, _, full = run_cell("sound", "full", checkpoint_path=tmp_path / "a.pt")
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "dcgmh", 0.4, seed=1)
    settings = TrainSettings(method="dcgmh", hp={**TINY, "oracle_noise_rate": 0.4}, bits=16, protocol="sound",
                             seed=0, device="cpu", progress=False, checkpoint_every=2)
    first = Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=tmp_path / "b.pt")
    original = first._save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(next_epoch, state):
        original(next_epoch, state)
        if next_epoch == 4:  # after 2 post-warm-up epochs: flags, profiles, corrections exist
            raise Stop

    first._save_checkpoint = save_then_stop
    with pytest.raises(Stop):
        first.run()
    resumed = Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=tmp_path / "b.pt").run()
    assert resumed.resumed_from == 4
    for key in full.codes:
        assert np.array_equal(full.codes[key], resumed.codes[key])
    assert resumed.history[-2]["select/flagged_fraction"] == full.history[-2]["select/flagged_fraction"]


# ----------------------------------------------------------------------------- diagnostics
def test_flagged_and_correction_diagnostics_hand_computed():
    corrupted = np.array([0, 0, 1, 1, 0], dtype=bool)
    flagged = np.array([0, 1, 1, 0, 0], dtype=bool)
    nan = np.nan
    corrected = np.array([[nan, nan], [nan, nan], [1, 0], [0, 1], [nan, nan]])
    clean = np.array([[1, 0], [0, 1], [1, 0], [1, 1], [1, 1]], dtype=np.uint8)
    out = d.selection_diagnostics(corrupted, flagged=flagged, corrected_labels=corrected, clean_labels=clean)
    assert out[d.FLAGGED_FRACTION] == pytest.approx(2 / 5)
    assert out[d.FLAGGED_PRECISION] == pytest.approx(1 / 2)  # flagged 1, 2: only 2 corrupted
    assert out[d.FLAGGED_RECALL] == pytest.approx(1 / 2)  # corrupted 2, 3: only 2 flagged
    # unflagged 0, 3, 4 are the kept set: 2 of 3 clean; clean rows 0, 1, 4: 2 kept
    assert out[d.KEPT_FRACTION] == pytest.approx(3 / 5)
    assert out[d.PRECISION] == pytest.approx(2 / 3) and out[d.RECALL] == pytest.approx(2 / 3)
    assert out[d.CORRECTED_FRACTION] == pytest.approx(2 / 5)
    assert out[d.CORRECTION_ACCURACY] == pytest.approx(1 / 2)  # row 2 right, row 3 wrong
    # an explicit ``kept`` wins; without clean labels there is no correction score
    out = d.selection_diagnostics(corrupted, kept=np.ones(5, bool), flagged=flagged, corrected_labels=corrected)
    assert out[d.KEPT_FRACTION] == 1.0 and d.CORRECTION_ACCURACY not in out
