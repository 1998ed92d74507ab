"""The generic trainer: learning, protocols, selection, determinism, checkpoints, diagnostics."""
import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError, DataError
from cmhash.methods import METHODS, Selection
from cmhash.methods.baseline import DCMHBaseline
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import clustered_dataset

HP = {**DCMHBaseline.defaults, "epochs": 6, "eval_every": 2, "batch_size": 32, "image_hidden": [32], "text_hidden": [32],
      "lr": 1e-3}


def make(protocol="sound", rate=0.0, hp=HP, method="baseline", ckpt=None, seed=0, **kw):
    ds = clustered_dataset()
    clean = ds.labels[ds.splits.train]
    noise = corrupt(clean, "nrch", rate, seed=1)
    settings = TrainSettings(method=method, hp=hp, bits=16, protocol=protocol, seed=seed, device="cpu", progress=False,
                             checkpoint_every=2, **kw)
    return ds, noise, Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=ckpt)


def test_training_lowers_loss_and_learns():
    ds, _, trainer = make()
    result = trainer.run()
    losses = [r["loss/total"] for r in result.history if "loss/total" in r]
    assert losses[-1] < losses[0]
    first = result.history[0]["select_map/i2t"] + result.history[0]["select_map/t2i"]
    assert result.selection_score > first + 0.1  # well above the untrained network
    assert result.codes["query_image"].shape == (ds.splits.query.size, 16)
    assert result.codes["database_text"].shape == (ds.splits.database.size, 16)
    assert set(np.unique(result.codes["query_image"])) <= {-1, 1}


def test_the_cpu_trainer_flushes_subnormal_floats_unless_told_not_to():
    """Subnormals (|x| < 1.2e-38) cost x86 cores up to ~100x per operation; the trainer flushes
    them to zero on the CPU (TrainSettings.flush_denormal, benchmarks/bench_denormal.py)."""
    def subnormal_survives() -> bool:
        return float(torch.tensor([1e-39]) * 1.0) > 0  # 1e-39 is subnormal in float32

    try:
        make(flush_denormal=False)
        assert subnormal_survives()  # IEEE gradual underflow
        make()
        assert not subnormal_survives()  # flushed to zero
        make(flush_denormal=False)
        assert subnormal_survives()
    finally:
        torch.set_flush_denormal(False)


def test_sound_protocol_holds_out_validation_rows():
    ds, _, trainer = make("sound")
    assert not np.isin(trainer.fit_rows, ds.splits.validation).any()
    assert trainer.fit_rows.size == ds.splits.train.size - ds.splits.validation.size
    _, _, paper = make("paper")
    assert paper.fit_rows.size == ds.splits.train.size


def test_sound_selection_never_reads_query_rows(monkeypatch):
    _, _, trainer = make("sound")
    seen = []
    original = trainer._encode_rows
    monkeypatch.setattr(trainer, "_encode_rows", lambda rows: seen.append(rows.copy()) or original(rows))
    trainer.selection_scores()
    assert len(seen) == 1 and np.array_equal(seen[0], trainer.dataset.splits.validation)


def test_identical_metrics_for_a_seed_on_cpu():
    a = make(seed=3)[2].run()
    b = make(seed=3)[2].run()
    assert a.selection_score == b.selection_score
    for key in a.codes:
        assert np.array_equal(a.codes[key], b.codes[key])
    c = make(seed=4)[2].run()
    assert any(not np.array_equal(a.codes[k], c.codes[k]) for k in a.codes)


def test_resume_from_checkpoint_gives_identical_result(tmp_path):
    full = make(ckpt=tmp_path / "a.pt")[2].run()
    # Train 4 of 6 epochs (checkpoint at epoch 4), then resume in a fresh trainer.
    part_hp = {**HP, "epochs": 6}
    _, _, first = make(ckpt=tmp_path / "b.pt", hp=part_hp)
    original_save = first._save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(next_epoch, state):
        original_save(next_epoch, state)
        if next_epoch == 4:
            raise Stop

    first._save_checkpoint = save_then_stop
    with pytest.raises(Stop):
        first.run()
    resumed = make(ckpt=tmp_path / "b.pt", hp=part_hp)[2].run()
    assert resumed.resumed_from == 4
    assert resumed.selection_score == full.selection_score
    for key in full.codes:
        assert np.array_equal(full.codes[key], resumed.codes[key])


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(b"truncated")
    _, _, trainer = make(ckpt=bad)
    with pytest.raises(DataError, match="ckpt.pt: unreadable checkpoint"):
        trainer.run()


class _Payload:
    """Stands for whatever a crafted checkpoint would unpickle (its __reduce__ could run code)."""


def test_checkpoint_holding_a_pickled_object_is_refused(tmp_path):
    """Checkpoints load with weights_only: one holding any other object is refused naming the
    file, and training starts afresh only once the user deletes it."""
    path = tmp_path / "ckpt.pt"
    torch.save({"fingerprint": "x", "complete": False, "payload": _Payload()}, path)
    _, _, trainer = make(ckpt=path)
    with pytest.raises(DataError, match=r"ckpt\.pt: refused, the checkpoint holds objects other than tensors"):
        trainer.run()
    assert path.is_file()  # never deleted or overwritten behind the user's back
    path.unlink()
    result = make(ckpt=path)[2].run()
    assert result.resumed_from is None and path.is_file()
    payload = torch.load(path, weights_only=True)  # what we write loads safely, RNG states and history included
    assert payload["complete"] and isinstance(payload["numpy_rng"]["keys"], torch.Tensor)


def test_selection_hook_drives_batches_and_diagnostics(monkeypatch):
    class KeepFirstHalf(DCMHBaseline):
        name = "keep_half_for_test"

        def before_epoch(self, view, epoch):
            kept = torch.zeros(len(view), dtype=torch.bool)
            kept[: len(view) // 2] = True
            return Selection(kept=kept, clean_score=kept.float(), extra={"threshold": 0.3})

    monkeypatch.setitem(METHODS, "keep_half_for_test", KeepFirstHalf)
    _, _noise, trainer = make(method="keep_half_for_test", rate=0.5)
    result = trainer.run()
    row = result.history[1]
    n = len(trainer.view)
    assert row["train/rows"] == n // 2
    assert row["select/kept_fraction"] == pytest.approx((n // 2) / n)
    clean = ~trainer.fit_corrupted
    assert row["select/precision"] == pytest.approx(clean[: n // 2].mean())
    assert row["select/recall"] == pytest.approx(clean[: n // 2].sum() / clean.sum())
    assert row["select/threshold"] == 0.3 and "select/auc" in row


def test_bad_inputs_are_named():
    ds = clustered_dataset()
    settings = TrainSettings(method="baseline", hp=HP, bits=16, protocol="sound", seed=0, device="cpu", progress=False)
    with pytest.raises(DataError, match="noisy labels of shape"):
        Trainer(ds, np.zeros((3, ds.n_classes), np.uint8), np.zeros(ds.splits.train.size, bool), settings)
    with pytest.raises(ConfigError, match="protocol 'oracle'"):
        TrainSettings(method="baseline", hp=HP, bits=16, protocol="oracle", seed=0)


def test_finished_or_foreign_checkpoint_is_not_resumed(tmp_path, caplog):
    ckpt = tmp_path / "c.pt"
    first = make(ckpt=ckpt)[2].run()
    again = make(ckpt=ckpt)[2]
    with caplog.at_level("WARNING", logger="cmhash"):
        assert again.resumable_checkpoint() is None  # a finished run: a re-run trains afresh
        assert again.run().resumed_from is None
    assert sum("from a finished run" in r.getMessage() for r in caplog.records) == 1  # said once, not per check
    # an interrupted checkpoint of another configuration is not resumed either
    _, _, other = make(ckpt=ckpt, hp={**HP, "lr": 5e-4})
    other._save_checkpoint(2, {"history": [], "best_score": 0.0, "best_epoch": 0, "best_state": None})
    assert make(ckpt=ckpt)[2].resumable_checkpoint() is None
    assert first.resumed_from is None


def test_standardized_features_use_only_the_fitted_rows_statistics():
    ds, _, trainer = make("sound", standardize=True)
    image = trainer.view.image.double()
    assert torch.allclose(image.mean(0), torch.zeros(image.shape[1], dtype=torch.float64), atol=1e-5)
    assert torch.allclose(image.std(0, unbiased=False), torch.ones(image.shape[1], dtype=torch.float64), atol=1e-4)
    # query rows are scaled with the fitted rows' mean and std, not their own
    fit = ds.image[trainer.fit_rows].astype(np.float64)
    expected = (ds.image[ds.splits.query] - fit.mean(0)) / fit.std(0)
    got = trainer._features(ds.splits.query, "image").double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(got.mean(0), 0.0, atol=1e-3)  # ... so they are not centred themselves
    plain = make("sound")[2]
    assert plain.scaling is None and torch.equal(plain.view.image, torch.as_tensor(ds.image[plain.fit_rows]))
    assert plain.fingerprint != trainer.fingerprint  # a checkpoint of the other setting is never resumed


def test_standardized_features_survive_a_constant_column():
    ds, noise, _ = make()
    ds.text[:, 0] = 3.0
    settings = TrainSettings(method="baseline", hp=HP, bits=16, protocol="sound", seed=0, device="cpu", progress=False,
                             checkpoint_every=0, standardize=True)
    trainer = Trainer(ds, noise.noisy, noise.corrupted, settings)
    assert torch.isfinite(trainer.view.text).all() and torch.all(trainer.view.text[:, 0] == 0)
    assert np.isfinite(trainer.run().selection_score)


def test_stage_train_reads_standardize_features_from_the_dataset_config(tmp_path):
    from cmhash.config import Cell
    from cmhash.data.canonical import write_dataset
    from cmhash.io import load_json
    from cmhash.pipeline import stage_noise, stage_train

    write_dataset(tmp_path / "dataset", clustered_dataset())
    stage_noise(tmp_path / "dataset", "nrch", 0.2, 0, tmp_path / "noise")
    cfg = {"experiment": "std", "device": "cpu", "threads": 1, "training": {"checkpoint_every": 0, "progress": False},
           "methods": {"baseline": {"epochs": 2, "eval_every": 1, "batch_size": 32, "image_hidden": [16],
                                    "text_hidden": [16]}}}
    cell = Cell("tiny", "baseline", "nrch", 0.2, 16, 0, "sound")
    codes = {}
    for flag in (False, True):
        cfg["datasets"] = {"tiny": {"source": "embedded", "standardize_features": flag}}
        out = tmp_path / f"run-{flag}"
        stage_train(cfg, cell, tmp_path / "dataset", tmp_path / "noise", out)
        assert load_json(out / "config.json")["settings"]["standardize_features"] is flag
        codes[flag] = np.load(out / "codes" / "query_image.npy")
    assert not np.array_equal(codes[False], codes[True])  # the flag reaches the trainer


# -- issue 13: the published candidate epochs and DCGMH's frozen BatchNorm ----------------------
def _scored_epochs(method, protocol, epochs, eval_every, **extra):
    from cmhash.methods import resolve_hparams

    hp, _ = resolve_hparams(method, "mirflickr25k", {"epochs": epochs, "eval_every": eval_every, "batch_size": 32,
                                                     "image_hidden": [16], "text_hidden": [16], **extra})
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "nrch", 0.2, seed=1)
    settings = TrainSettings(method=method, hp=hp, bits=8, protocol=protocol, seed=0, device="cpu",
                             progress=False, checkpoint_every=0)
    result = Trainer(ds, noise.noisy, noise.corrupted, settings).run()
    scored = [int(r["epoch"]) for r in result.history if "select_map/i2t" in r]
    assert result.selected_epoch in scored
    return scored


@pytest.mark.parametrize("protocol", ["paper", "sound"])
def test_nrch_candidates_are_the_published_ones(protocol):
    # published NRCH: scored at the start of epoch e iff (e + 1) % eval_every == 0, never the final model
    scored = _scored_epochs("nrch", protocol, epochs=6, eval_every=3, warmup_epochs=2)
    assert scored == ([2, 5] if protocol == "paper" else [2, 5, 6])


@pytest.mark.parametrize("protocol", ["paper", "sound"])
def test_scbch_candidates_are_the_published_ones(protocol):
    # published SCBCH: scored at the start of every epoch, never after the last
    scored = _scored_epochs("scbch", protocol, epochs=3, eval_every=1, warmup_epochs=1, k=3)
    assert scored == ([0, 1, 2] if protocol == "paper" else [0, 1, 2, 3])


def test_baseline_candidates_unchanged():
    assert _scored_epochs("baseline", "paper", epochs=4, eval_every=2) == [0, 2, 4]


@pytest.mark.parametrize("protocol,frozen", [("paper", True), ("paper", False), ("sound", True)])
def test_dcgmh_trains_in_eval_mode_after_the_first_official_evaluation(monkeypatch, protocol, frozen):
    """Published DCGMH (engine.py): eval mode from epoch index eval_every on, under `paper` only."""
    from cmhash.methods.dcgmh import DCGMH

    modes: dict[int, set[bool]] = {}
    real_loss = DCGMH.loss

    def spy(self, batch, epoch):
        modes.setdefault(epoch, set()).add(self.training)
        bn = [m for m in self.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        assert all(m.training is self.training for m in bn)
        return real_loss(self, batch, epoch)

    monkeypatch.setattr(DCGMH, "loss", spy)
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "dcgmh", 0.4, seed=1)
    hp = {**DCGMH.defaults, "epochs": 5, "warmup": 1, "batch_size": 32, "eval_every": 2, "image_hidden": [16],
          "text_hidden": [16], "fusion_per_bit": 2, "lr": 0.05, "oracle_noise_rate": 0.4, "frozen_batchnorm": frozen}
    settings = TrainSettings(method="dcgmh", hp=hp, bits=8, protocol=protocol, seed=0, device="cpu",
                             progress=False, checkpoint_every=0)
    trainer = Trainer(ds, noise.noisy, noise.corrupted, settings)
    trainer.run()
    quirk = protocol == "paper" and frozen
    assert modes == {e: {not (quirk and e >= 2)} for e in range(5)}
