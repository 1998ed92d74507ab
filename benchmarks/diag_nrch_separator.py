"""Why NRCH's Dynamic Noise Separator barely separates in the small preset: is the classifier
undertrained, or is the published per-sample loss uninformative on this data?

    bash scripts/demo.sh                                 # builds results/datasets/embedded (once)
    .venv/bin/python benchmarks/diag_nrch_separator.py   # rate 0.5, seed 0, 64 bits, sound

Trains NRCH with the benchmark's small preset (benchmarks/bench_crossmodal.py: 256-wide encoders,
RMSprop lr 1e-4, 30 epochs, warm-up 6) through ``cmhash.train.Trainer``, and at the end of the
warm-up and of training scores the training rows' corruption mask (the noise stage's ground
truth, never shown to the method) with these clean scores (ROC-AUC; 0.5 = chance):

* ``published``  — minus NRCH's per-sample loss with the trained classifier ``W`` (METHODS.md:
  max over the row's positive labels of the two modalities' squared errors): what the GMM sees;
* ``lstsq-max`` — the same loss with the classifier replaced by the least-squares fit of the
  +-1 noisy labels on the current codes (the best linear classifier the codes allow; the
  published classifier only approaches it as ``W`` trains);
* ``lstsq-mean`` — the least-squares classifier with the mean instead of the max over positive
  labels, and ``lstsq-all`` over every class (positives and negatives).

Comparing ``published`` with ``lstsq-max`` separates "classifier undertrained" from "loss
uninformative". Also printed: how far ``tanh(W)`` has moved from its orthogonal initialisation
(RMSprop moves each entry by about ``lr`` per step, so ``W`` changes slowly at NRCH's rates).

Measured 2026-11-25 (rate 0.5, seed 0, 64 bits; published AUC / least-squares-max AUC / |dW|/|W0|):
  lr 1e-4 (the preset):               warm-up end .480 / .731 / 0.10;  training end .496 / .758 / 0.22
  lr 1e-4, classifier_lr 1e-3:        warm-up end .648 / .731 / 0.69;  training end .568 / .744 / 1.46
  lr 1e-4, classifier_lr 1e-2:        warm-up end .657 / .731 / 1.48;  training end .631 / .741 / 3.08
  lr 1e-3 (everything):               warm-up end .650 / .697 / 0.64;  training end .636 / .680 / 0.81
The codes carry the corruption (the best linear classifier on them ranks rows at AUC .73-.76);
the published classifier does not learn it in the steps the preset gives: W is undertrained,
the loss itself is informative. At the published lr 1e-5, 19 warm-up epochs of ~79 steps move
each entry of W by roughly 0.015-0.03 (about lr a step, more in the first steps) against an
initial scale of 1/sqrt(bits) = 0.125, so the same question arises at full scale (not
measurable here: the MIRFlickr VGG features are not shipped).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cmhash.data.canonical import read_dataset
from cmhash.methods import resolve_hparams
from cmhash.methods.nrch import per_sample_label_loss, signed_labels
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings


def lstsq_scores(x: np.ndarray, y_pm: np.ndarray) -> np.ndarray:
    """Fitted +-1 label scores of the least-squares linear map (with bias) from ``x``."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])
    coef, *_ = np.linalg.lstsq(xb, y_pm, rcond=None)
    return xb @ coef


def aucs(trainer: Trainer) -> dict[str, float]:
    """Clean-score AUCs against the training rows' corruption mask (see module docstring)."""
    view, method = trainer.view, trainer.method
    labels = view.labels
    with torch.no_grad():
        codes = method.encode_all(view.image, view.text)
        u, v = codes["image"], codes["text"]
        published = per_sample_label_loss(u, v, labels, method.W).cpu().numpy()
    y = signed_labels(labels).cpu().numpy().astype(np.float64)
    pos = labels.cpu().numpy().astype(bool)
    su = lstsq_scores(u.cpu().numpy().astype(np.float64), y)
    sv = lstsq_scores(v.cpu().numpy().astype(np.float64), y)
    err = (y - su) ** 2 + (y - sv) ** 2
    noisy = trainer.fit_corrupted.astype(int)
    scores = {
        "published": -published,
        "lstsq-max": -np.where(pos, err, 0).max(1),
        "lstsq-mean": -(np.where(pos, err, 0).sum(1) / np.maximum(pos.sum(1), 1)),
        "lstsq-all": -err.mean(1),
    }
    return {name: float(roc_auc_score(1 - noisy, s)) for name, s in scores.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-dir", type=Path, default=Path("results/datasets/embedded"))
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--classifier-lr", type=float, default=None, help="NRCH classifier_lr (default: lr, as published)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=6)
    args = ap.parse_args()
    if not (args.dataset_dir / "labels.npy").is_file():
        sys.exit(f"{args.dataset_dir}: no dataset; run `bash scripts/demo.sh` first (it builds results/datasets/embedded)")
    torch.set_num_threads(2)
    ds = read_dataset(args.dataset_dir)
    noise = corrupt(ds.labels[ds.splits.train], "nrch", args.rate, args.seed)
    rows = []
    for stage, epochs in (("end of warm-up", args.warmup), ("end of training", args.epochs)):
        hp, _ = resolve_hparams("nrch", None, {
            "image_hidden": [args.hidden, args.hidden], "text_hidden": [args.hidden], "lr": args.lr, "classifier_lr": args.classifier_lr,
            "epochs": epochs, "warmup_epochs": args.warmup, "eval_every": max(1, epochs), "selection": "last",
            "num_gradual": args.epochs})
        settings = TrainSettings(method="nrch", hp=hp, bits=args.bits, protocol="sound", seed=args.seed,
                                 device="cpu", progress=False, checkpoint_every=0)
        trainer = Trainer(ds, noise.noisy, noise.corrupted, settings)
        w0 = torch.tanh(trainer.method.W.detach().clone())
        trainer.run()
        w1 = torch.tanh(trainer.method.W.detach())
        moved = float((w1 - w0).norm() / w0.norm())
        rows.append((f"{stage} (epoch {epochs})", {**aucs(trainer), "|dW|/|W0|": moved}))
    names = list(rows[0][1])
    print(f"NRCH separator AUC (clean vs corrupted rows), rate {args.rate}, seed {args.seed}, {args.bits} bits, "
          f"small preset (hidden {args.hidden}, lr {args.lr}, classifier_lr {args.classifier_lr}, "
          f"warm-up {args.warmup}):")
    print(f"{'stage':28s}" + "".join(f"{n:>12s}" for n in names))
    for stage, values in rows:
        print(f"{stage:28s}" + "".join(f"{values[n]:12.3f}" for n in names))


if __name__ == "__main__":
    main()
