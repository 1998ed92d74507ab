"""Seconds per training epoch and peak memory of a method at MIRFlickr-25K scale.

    .venv/bin/python benchmarks/bench_epoch.py                 # NRCH: 10,000 pairs, 4096/1386-d, 24 classes, 64 bits, widths 8192
    .venv/bin/python benchmarks/bench_epoch.py --epoch 19      # NRCH's first epoch after warm-up (in-batch filtering on)
    .venv/bin/python benchmarks/bench_epoch.py --method scbch --epoch 5   # SCBCH after warm-up (CSCC over all rows)
    .venv/bin/python benchmarks/bench_epoch.py --hidden 512 --n 2000   # a quick look
    .venv/bin/python benchmarks/bench_epoch.py --json nrch.json        # also write the numbers (gpu_check.sh)

One epoch is what the trainer does for it: the method's ``before_epoch`` over every training
row (NRCH: the Dynamic Noise Separator's forward pass and GMM; SCBCH: CSCC's neighbour soft
labels in blocks; DCGMH: its consistency scores), then batches drawn by indexing the on-device
tensors (loss, backward, optimiser step). Evaluation is not included. Data are random (seeded):
features N(0, 1), multi-hot labels with about 3 positives per row. ``--epoch`` picks the epoch
index (the methods switch their selection on after their warm-up). Widths: the published ones
(8192; DCGMH 4096) unless ``--hidden``.

Memory: peak resident set size of the process (``resource.getrusage``; torch allocations are
invisible to tracemalloc), before and after; on CUDA also ``torch.cuda.max_memory_allocated``.
Other processes on the machine slow the numbers down: the load average is printed with them.
On the CPU, subnormal floats are flushed to zero as the trainer does (``TrainSettings.flush_denormal``);
``--keep-denormals`` turns that off. The rows below without a ``flushed`` mark were measured
before this script flushed them, i.e. as ``--keep-denormals`` measures now.

Measured on this project's 2-core CPU machine (published widths, 10,000 pairs, 64 bits):

    method  epoch                   s/epoch (hook + batches)   peak RSS   load average
    nrch    0 (warm-up)             352                        2.9 GiB    ~4 (2026-11-23)
    scbch   5 (CSCC on all rows)    323 (37 + 286)             3.8 GiB    5.9 (2026-11-25)
    dcgmh   6 (after warm-up)       727 (29 + 698)             2.7 GiB    5.9 (2026-11-25)

    ucch    0                       92 (0 + 92)                3.6 GiB    1.7 (2026-12-02)
    djsrh   0                       9.4 (0 + 9.4)              1.1 GiB    1.7 (2026-12-02)

Flushed, ``--threads 1``, 2026-12-06, while the robustness study ran on both cores (load ~6, so
roughly 3x the unloaded times):

    dgcpn   0                       251 (59 + 192)             3.4 GiB    5.2 (flushed)
    dcmh    0 (one pass)            57 (12 + 45)               2.1 GiB    6.1 (flushed)
    rshnl   0                       205 (46 + 158)             2.6 GiB    6.4 (flushed)
    dchuc   0 / 1 / 2               1.5 / 10.7 / 0.9           1.6 GiB    5.9 (flushed)

(DGCPN: 23M parameters at its published 4096 widths, batch 32, the hook its affinity over all rows
(built once); DCMH: the hash layer on the image features and text 1386 -> 8192 -> 64, batch 128, the hook
the B update, published 1000 passes = ~16 h here; RSHNL: 74M parameters at 4096 widths, batch
256, the hook its per-row difficulty and weights; DCHUC: an epoch is one pass over its sample of 2,000 rows,
published ``num_samples``, and its image, text and code steps alternate, so an outer iteration is
3 x 2 such epochs.)
(UCCH: 113M parameters at its published 8192 widths, batch 256; DJSRH: the hash layer on the
image features and text 1386 -> 4096 -> 64, batch 32.) The loss column is the row-weighted mean
over the epoch's batches (a batch a method drops counts 0: UCCH's and DJSRH's ``drop_last``
quirks, UCCH.py:63 and DJSRH train.py:40, see their modules).
At a load of ~6 on 2 cores these are roughly 2-3x the unloaded times. A GPU is the place for
the published settings: 100 NRCH epochs are ~10 hours here.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from cmhash.io import save_json
from cmhash.methods import Batch, TrainView, get_method, resolve_hparams


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="training pairs (MIRFlickr: 10,000)")
    ap.add_argument("--image-dim", type=int, default=4096)
    ap.add_argument("--text-dim", type=int, default=1386)
    ap.add_argument("--classes", type=int, default=24)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--method", default="nrch", help="registered method (nrch, scbch, dcgmh, baseline, ucch, djsrh, "
                                                     "dgcpn, dcmh, dchuc, rshnl)")
    ap.add_argument("--hidden", type=int, default=None, help="encoder width (default: the published one)")
    ap.add_argument("--epoch", type=int, default=0, help="epoch index to run (0: warm-up; >= 19: after warm-up)")
    ap.add_argument("--epochs", type=int, default=1, help="how many epochs to time, from --epoch on")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not flush subnormal floats on the CPU (the trainer flushes them: TrainSettings.flush_denormal)")
    ap.add_argument("--json", default=None, help="also write the measured numbers to this JSON file")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cpu":  # as the trainer (cmhash.train.Trainer, TrainSettings.flush_denormal)
        torch.set_flush_denormal(not args.keep_denormals)
    rss_start = rss_mib()
    rng = np.random.default_rng(args.seed)
    labels = (rng.random((args.n, args.classes)) < 3.0 / args.classes).astype(np.float32)
    labels[np.arange(args.n), rng.integers(0, args.classes, args.n)] = 1.0
    view = TrainView(image=torch.as_tensor(rng.standard_normal((args.n, args.image_dim), dtype=np.float32), device=device),
                     text=torch.as_tensor(rng.standard_normal((args.n, args.text_dim), dtype=np.float32), device=device),
                     labels=torch.as_tensor(labels, device=device))
    cls = get_method(args.method)
    overrides = {}
    if args.hidden:  # the same depth as published, narrower (a list of widths, or one width: DGCPN, DCHUC)
        for key in ("image_hidden", "text_hidden", "centre_hidden"):
            if key in cls.defaults:
                published = cls.defaults[key]
                overrides[key] = [args.hidden] * len(published) if isinstance(published, list) else args.hidden
    hp, _ = resolve_hparams(args.method, "mirflickr25k", overrides)
    needs = cls.needs("paper")
    if needs.clean_labels:  # the `paper` protocol's correction reads them (random data: clean = noisy)
        view.clean_labels = view.labels.clone()
    if needs.true_noise_rate:
        view.true_noise_rate = 0.4  # DCGMH's paper protocol flags this fraction
    torch.manual_seed(args.seed)
    method = cls(args.image_dim, args.text_dim, args.classes, args.bits, hp, "paper").to(device)
    optimizer, _ = method.configure_optimizer()
    n_params = sum(p.numel() for p in method.parameters())
    generator = torch.Generator().manual_seed(args.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_built = rss_mib()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rows = []
    for epoch in range(args.epoch, args.epoch + args.epochs):
        method.train()
        t0 = time.perf_counter()
        selection = method.before_epoch(view, epoch)
        sync()
        t_sep = time.perf_counter() - t0
        weights = selection.weights if selection is not None else None
        rows_kept = torch.arange(args.n)  # as the trainer: a Selection's `kept` rows only, shuffled
        if selection is not None and selection.kept is not None:
            rows_kept = torch.nonzero(selection.kept.detach().cpu(), as_tuple=False).flatten()
        order = rows_kept[torch.randperm(rows_kept.numel(), generator=generator)].to(device)
        steps, trained_rows, loss_sum = 0, 0.0, torch.zeros((), device=device)
        t1 = time.perf_counter()
        for b in range(0, order.numel(), hp["batch_size"]):
            idx = order[b:b + hp["batch_size"]]
            if idx.numel() < 2:
                continue
            batch = Batch(index=idx, image=view.image[idx], text=view.text[idx], labels=view.labels[idx],
                          weight=None if weights is None else weights[idx])
            loss, parts = method.loss(batch, epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            rows_b = parts.get("rows", float(idx.numel()))  # 0 for a batch the method drops (drop_last quirks)
            trained_rows += rows_b
            loss_sum = loss_sum + loss.detach() * rows_b  # no per-step sync: read once after the epoch
        sync()
        t_train = time.perf_counter() - t1
        kept = float(selection.extra.get("kept_fraction", 1.0)) if selection is not None else 1.0
        mean_loss = loss_sum.item() / trained_rows if trained_rows else float("nan")  # row-weighted over the epoch
        rows.append((epoch, t_sep, t_train, t_sep + t_train, steps, trained_rows, kept, mean_loss))

    load = os.getloadavg()
    print(f"{args.method} epoch benchmark: N={args.n}, image {args.image_dim}-d, text {args.text_dim}-d, "
          f"{args.classes} classes, {args.bits} bits, widths {hp.get('image_hidden', '-')} / {hp['text_hidden']}, "
          f"{n_params / 1e6:.1f}M parameters")
    print(f"device {device}, torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other processes slow these numbers), "
          f"subnormals {'kept' if args.keep_denormals or device.type != 'cpu' else 'flushed'}")
    head = f"{'epoch':>5} {'separator s':>11} {'train s':>9} {'total s':>9} {'steps':>6} {'rows':>7} {'kept':>6} {'loss':>8}"
    print(head)
    print("-" * len(head))
    for epoch, ts, tt, tot, steps, n_rows, kept, loss in rows:
        print(f"{epoch:>5} {ts:>11.2f} {tt:>9.2f} {tot:>9.2f} {steps:>6} {int(n_rows):>7} {kept:>6.3f} {loss:>8.4f}")
    print(f"peak RSS: {rss_start:.0f} MiB at start, {rss_built:.0f} MiB with data and model, {rss_mib():.0f} MiB after")
    peak_cuda = None
    if device.type == "cuda":
        peak_cuda = torch.cuda.max_memory_allocated(device) / 2**20
        print(f"peak CUDA memory allocated: {peak_cuda:.0f} MiB")
    if args.json:
        last = rows[-1]
        save_json(args.json, {
            "method": args.method, "device": str(device), "n": args.n, "image_dim": args.image_dim,
            "text_dim": args.text_dim, "classes": args.classes, "bits": args.bits,
            "image_hidden": hp.get("image_hidden"), "text_hidden": hp["text_hidden"], "parameters": n_params,
            "epochs": [dict(zip(("epoch", "hook_s", "batches_s", "total_s", "steps", "rows", "kept", "loss"), r))
                       for r in rows],
            "s_per_epoch": last[3], "peak_cuda_mib": peak_cuda, "peak_rss_mib": rss_mib(),
            "load_average": load[0], "flush_denormal": device.type == "cpu" and not args.keep_denormals,
            "torch_threads": torch.get_num_threads(),
            "summary": f"{last[3]:.2f} s/epoch (epoch {last[0]}: hook {last[1]:.2f} + batches {last[2]:.2f}), "
                       + (f"peak CUDA {peak_cuda:.0f} MiB" if peak_cuda is not None else f"peak RSS {rss_mib():.0f} MiB")
                       + f", widths {hp.get('image_hidden', '-')}/{hp['text_hidden']}, {n_params / 1e6:.1f}M parameters, {device}"})


if __name__ == "__main__":
    main()
