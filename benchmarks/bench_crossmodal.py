"""The cross-modal methods, small preset: NRCH and SCBCH against the noise-agnostic DCMH-style
baseline, with NRCH's ablation (separator off) and SCBCH's (CSCC off, BSCH off); further
variants on request (NRCH's ``classifier_lr`` extension, SCBCH's published options).

    bash scripts/demo.sh                                # builds results/datasets/embedded (once)
    .venv/bin/python benchmarks/bench_crossmodal.py    # 3 rates x 3 seeds x 6 variants, 64 bits, sound
    .venv/bin/python benchmarks/bench_crossmodal.py --rates 0.5 --seeds 0 --variants scbch baseline
    .venv/bin/python benchmarks/bench_crossmodal.py --rates 0.5 --csv a.csv &   # rates in parallel,
    .venv/bin/python benchmarks/bench_crossmodal.py --rates 0.8 --csv b.csv     # then one table:
    .venv/bin/python benchmarks/bench_crossmodal.py --summarise a.csv b.csv
    # Wikipedia (real published features; built by snakemake --configfile config/wikipedia.yaml):
    .venv/bin/python benchmarks/bench_crossmodal.py --dataset-dir results/datasets/wikipedia --standardize --epochs 30

Each run goes through ``cmhash.train.Trainer`` exactly as a workflow cell does: ``nrch`` noise
(``cmhash.noise.corrupt``) on the training rows at the given rate, seeded with the run's seed;
the ``sound`` protocol (model selection on the validation rows with their noisy labels, never
on the query set); then mAP@all of the selected model on the query set against the database
with clean labels (``cmhash.evaluate.map_at_all``: stable ties, queries without a relevant
item skipped).

Small preset (the same code; printed with the results): both encoders ``--hidden`` (256) wide
instead of the published 8192, and higher learning rates (below). Each method trains for its
published number of epochs (baseline 50, SCBCH 50, NRCH 100) with its published epoch-based
settings. ``--epochs N`` trains every method N epochs instead and scales those settings by
s = N / published epochs (the 2026-11-23/25 measurements below used ``--epochs 30``):

* scbch (published 50 epochs): warm-up ``round(5 * s)``, evaluation every epoch (published);
  Adam lr ``--scbch-lr`` (3e-4 instead of the published 1e-4: the embedded training set has 900
  fitting rows, ~8 steps an epoch instead of ~79 on MIRFlickr, so 50 epochs are ~400 steps
  instead of ~4,000).
  One-seed sweep at rate 0.8, width 256, 30 epochs (avg mAP): 1e-4 0.638 (still rising at the last epoch),
  3e-4 0.676, 1e-3 0.649 (fewer distinct codes).
  The embedded set mirrors MIRFlickr, so k, margin, shift = 20, 0.15, 0.8 (published for MIRFlickr).
* nrch (published 100 epochs): warm-up ``round(19 * s)``, evaluation every ``round(20 * s)``,
  ``num_gradual = round(100 * s)``; RMSprop lr ``--nrch-lr`` (1e-4 instead of 1e-5, same reason).
  Same sweep: 1e-5 0.558 (best epoch 0: nothing learnt), 1e-4 0.620, 1e-3 0.557 (codes collapse).
* baseline (50 epochs): evaluation every ``round(5 * s)``; its own lr (Adam 1e-3).
* scbch-cscc-off / scbch-bsch-off: scbch's preset with ``cscc: false`` / ``bsch: false``.

Printed: one line per run (mAP, selected epoch, distinct query codes, the method's last
selection diagnostics: for nrch the separator's AUC and kept fraction, for scbch the CSCC
weights' AUC and mean weight of clean / corrupted rows), then mean +- std over seeds per
variant, rate and direction, and whether SCBCH and NRCH beat the baseline by more than the
pooled std ``sqrt((s_method^2 + s_base^2) / 2)``.

Measured 2026-11-26, embedded set, default preset (published epochs), sound, 64 bits, 3 seeds,
2 shared cores (rates run as parallel processes, ~25 min each), average of i2t and t2i, mean +- std:

    rate  baseline     nrch         nrch sep. off  scbch        scbch CSCC off  scbch BSCH off
    0.0   .738+-.004   -            .719+-.009     .743+-.005   -               -
    0.2   .723+-.011   .689+-.018   .710+-.011     .733+-.002   .731+-.002      .593+-.019
    0.5   .704+-.006   .688+-.009   .693+-.009     .716+-.008   .714+-.004      .594+-.025
    0.8   .685+-.016   .668+-.013   .674+-.008     .698+-.005   .694+-.003      .584+-.012

* SCBCH beats the baseline by more than the pooled std at 0.2 (+.010 > .008), 0.5 (+.012 >
  .007) and 0.8 (+.013 > .012), and ties it on clean labels (+.005): its margin grows with the
  noise. By direction, t2i clears the bar at 0.5 and 0.8, i2t does not. Two more seeds (3, 4;
  5 in all) for baseline and SCBCH at 0.5 / 0.8: +.014 (pooled std .007) / +.012 (.011), and
  SCBCH is ahead in every one of the 5 seeds at both rates (paired differences .008-.020 at
  0.5, .005-.027 at 0.8). CSCC off is within .004 of the full method; the gain comes from BSCH
  (its Jaccard soft pairs), and BSCH off collapses the codes (3-35 distinct query codes).
  The CSCC weights separate (AUC .75-.79; mean weight .84-.87 clean against .76-.77 corrupted).
* NRCH does not beat the baseline (-.034 / -.016 / -.018 at 0.2 / 0.5 / 0.8). Why: its
  contrastive backbone (separator off) is already .019 below the baseline on CLEAN labels and
  loses a little less to noise than the baseline does (-.026 against -.035 from 0 to 0.5,
  -.045 against -.053 to 0.8), not enough to close that gap; and the separator costs .006-.021
  on top (AUC .58-.60: its classifier W barely moves at the published rate,
  benchmarks/diag_nrch_separator.py). ``nrch`` noise is mild for a pairwise learner on
  MIRFlickr-like multi-label rows: at 0.5 it falsifies only 12% of the similar pairs the
  baseline trains on, on the real MIRFlickr labels as on the embedded set
  (benchmarks/diag_noise_pairs.py).
* 30 epochs (the earlier preset, below) were too few: at its published epoch count the
  baseline gains .004-.019, SCBCH .016-.021 and NRCH .037-.047; SCBCH's margin at 0.5 only
  appears there.
* SCBCH's published options (``--epochs 30``, rate 0.5, 3 seeds; full method .700+-.005 there):
  cross-modal CSCC neighbours (``scbch-cross``) .700+-.001, BSCH from the end of warm-up as the
  paper describes (``scbch-paper-order``) .707+-.006, the code's alpha/beta 0.3/0.7
  (``scbch-code-weights``) .694+-.011.

The label-free reference rows (issue 17), measured 2026-12-02, embedded set, published epochs
(UCCH 20, DJSRH 80, DGCPN 100), sound (each keeps its last epoch), 64 bits, 3 seeds, 2 shared
cores (~25 min in all), ``--variants ucch djsrh dgcpn``; records/crossmodal/embedded_label_free.csv.
They read no label, so one run per seed fills every rate. Preset: widths 256 (DJSRH: the hash
layer on the image features and text 4096 -> 256, its published depth); UCCH batch 64 and Adam
lr 1e-3 (published 256 and 1e-4: ~14 steps an epoch on 900 rows instead of ~70 on MIRFlickr)
and K = 900 negatives (published 4096 > the bank); DGCPN k = 40% of the fitting rows (2,000 of
MIRFlickr's 5,000), scale 2k as published. Average of i2t and t2i, mean +- std:

    ucch   .587+-.009    djsrh  .556+-.001    dgcpn  .557+-.000     (every rate)

Against the supervised rows above (same preset, protocol and seeds, 2026-11-26): every one of
them stays above the best label-free method, UCCH, at every rate (the lowest, NRCH at 0.8,
.668, is +.081 above it); the label-free methods sit ~.15 below the clean-label baseline. On
these MIRFlickr-like multi-label rows even 80% ``nrch`` noise leaves the labels worth having,
unlike NRCH's published MIRFlickr table, where UCCH (.724 i2t at 64 bits, every rate) beats most
supervised methods at 50% and 80%. The comparison rows DCMH / DCHUC / RSHNL: below.

On Wikipedia (2026-12-02, ``--dataset-dir <wikipedia> --standardize --epochs 30 --variants ucch
djsrh dgcpn``, sound, 64 bits, 3 seeds, the preset above with 30 epochs each, 86 min on 2 cores
shared with a training job; records/crossmodal/wikipedia_label_free.csv), average of i2t and
t2i, every rate:

    ucch   .366+-.008 (i2t .250, t2i .483)    djsrh  .180+-.001    dgcpn  .302+-.003

Against the supervised Wikipedia rows below (same flags, 2026-11-26), the picture is NRCH's
published one: UCCH is above NRCH at every rate, clean labels included (.328 / .316 / .296 /
.284 at 0.0 / 0.2 / 0.5 / 0.8), above the baseline from 0.5 on (.255, .192; a tie at 0.2,
.372 against .366), and above SCBCH at 0.8 (.332); SCBCH ties it at 0.5 (.371, within UCCH's
std). Here ``nrch`` noise falsifies 71% of the similar pairs at 0.5 (single-label rows), so
past about 0.3 noise the labels are worth less than no labels for every method but SCBCH.

The comparison rows (issue 18), embedded set, published epochs (DCMH 1000 passes = 500 outer
iterations, DCHUC 180 = 30 iterations x 3 x 2 passes, RSHNL 150), sound, 64 bits, 3 seeds
(seed 0 at 0.2-0.8 measured 2026-12-02, the rest 2026-12-06; a DCMH cell takes 33-48 s alone,
but two benchmark processes side by side finished no DCMH cell in 11 min before this script
sized the native pools, cmhash.threads; since, two side by side took 106 and 113 s on a loaded
machine), records/crossmodal/embedded_comparison_*.csv
(``--summarise benchmarks/records/crossmodal/embedded_comparison_*.csv --rates 0.0 0.2 0.5 0.8
--variants dcmh dchuc rshnl``). Preset: widths 256 (DCMH: its published hash layer on the image
features, text 8192 -> 256; DCHUC text 10240 -> 256 and a sample of all 900 fitting rows an
iteration instead of 2,000), published learning rates. Average of i2t and t2i, mean +- std:

    rate  dcmh          dchuc         rshnl         baseline (3 seeds, 2026-11-26)
    0.0   .589+-.003    .713+-.001    .737+-.008    .738+-.004
    0.2   .587+-.002    .698+-.005    .725+-.006    .723+-.011
    0.5   .583+-.001    .679+-.009    .715+-.002    .704+-.006
    0.8   .581+-.003    .660+-.004    .702+-.004    .685+-.016
    0.2 -> 0.8  -.006   -.038         -.022         -.038

* RSHNL, the robust single-label method, ties the baseline on clean labels and at 0.2 and beats
  it by more than the pooled std at 0.5 (+.011 > .004) and 0.8 (+.017 > .012), losing about
  half of what the baseline loses from 0.2 to 0.8; its self-paced weights barely rank the
  corrupted rows (AUC .57-.59). (The baseline's runs predate the subnormal flush, which moves
  a cell by about .001.)
* DCHUC stays .025 below the baseline at every rate, clean labels included, and loses as much.
* ``dcmh`` does NOT reproduce the published DCMH's steep fall (NRCH's MIRFlickr table, i2t at
  64 bits: .695 at 20%, .619 at 50%): it is flat because it learns little in the first place,
  .04 above the embedded set's chance (.546) and at or below the label-free UCCH (.587), on
  clean labels as at every rate. Its
  published schedule (plain SGD, lr logspace(-1.5, -3) DCMH_demo.m:20-21, the gradient divided
  by batch x N update_net.m:5-8, N(0, .01^2) weights net_structure_txt.m:2-3) moves a linear image hash layer little in
  this preset; the robustness preset (20 passes) found it near chance at any rate that does
  not diverge (config/robustness.yaml). An audit against the official code (2026-12-06) found no
  departure from its update (process_DCMH.m:42-44/66-69, update_net.m:2-8: plain SGD, weight
  decay 5e-4, no momentum); the schedule was set for a fine-tuned CNN-F (net_structure_img.m:11-17,
  update_net.m:3) with 78 batches of 128 a pass (DCMH_demo.m:24),
  and on fixed features (one linear image layer, ~15 steps a pass on Wikipedia) it barely moves
  the outputs: Wikipedia, clean labels, text 256 wide, seed 0, passes 100 / 200 / 400 / 600 of
  the published 1,000: likelihood .69302 -> .69158 a pair (log 2 = .69315), text outputs
  .003 -> .007 rms, i2t / t2i .174/.144, .193/.152, .198/.153, .198/.152 (chance .108); text
  8192 wide (published) after 20 passes .140 / .116. So the published fall cannot be attributed
  to noise sensitivity of the method from these runs; the fine-tuned CNN-F on raw images (a
  GPU) is what would settle it.

On Wikipedia (2026-12-02, ``--standardize --epochs 30 --rates 0.0 0.2 0.5 0.8 --variants dcmh
dchuc rshnl``, sound, 64 bits, 3 seeds, 3 min in all; records/crossmodal/wikipedia_comparison.csv;
``--epochs 30`` scales the schedules: DCMH 15 outer iterations instead of 500, DCHUC 5 instead
of 30, RSHNL 30 epochs instead of 150), average of i2t and t2i, mean +- std:

    rate  dcmh         dchuc        rshnl        (baseline, 2026-11-26)   RSHNL weight AUC
    0.0   .129+-.003   .194+-.005   .288+-.003   .465                     -
    0.2   .128+-.003   .178+-.007   .277+-.006   .372                     .88
    0.5   .128+-.003   .167+-.002   .253+-.002   .255                     .78
    0.8   .128+-.003   .141+-.007   .166+-.012   .192                     .62

DCMH is flat at chance level again (chance .108): in 15 outer iterations its published SGD
schedule does not leave the zero-buffer saddle. RSHNL's self-paced weights separate the
corrupted rows well here (AUC .88 at 0.2), unlike on the multi-label embedded set, but its
backbone is far below the baseline on clean labels in this preset (.288 against .465), so it only
ties the baseline at 0.5 and is below it at 0.8; UCCH (.366, label-free) is above all three at
every rate.

Measured 2026-11-26, Wikipedia (real published features, 10 single-label classes),
``--standardize --epochs 30``, sound, 64 bits, 3 seeds (~5 min in all), average of i2t and t2i:

    rate  baseline     nrch         nrch sep. off  scbch        scbch CSCC off  scbch BSCH off
    0.0   .465+-.002   .328+-.007   .330+-.005     .416+-.004   .416+-.004      .140+-.019
    0.2   .372+-.002   .316+-.007   .320+-.005     .398+-.003   .398+-.004      .140+-.019
    0.5   .255+-.021   .296+-.003   .307+-.002     .371+-.002   .371+-.006      .128+-.005
    0.8   .192+-.012   .284+-.001   .288+-.025     .332+-.026   .345+-.001      .128+-.012

Here ``nrch`` noise replaces a corrupted row's only label, so at 0.5 71% of the baseline's
similar pairs are false (diag_noise_pairs.py), and the baseline falls from .465 to .255 / .192.
NRCH and SCBCH beat it by far more than the pooled std at 0.5 (+.041 / +.116) and 0.8 (+.091 /
+.139) although the baseline is well ahead on clean labels. Again the selection modules add
nothing over their backbones (separator off and CSCC off score as high or higher) even though
they separate well here (CSCC AUC .93 at 0.5; NRCH's separator .71). Without ``--standardize``
the baseline's codes collapse on these tiny features (4 distinct image codes, .128 at 0.5).

Measured 2026-11-23 (``--epochs 30``, 2 shared cores, 29 min), average of i2t and t2i, mean +- std over
3 seeds: rate 0.2 baseline .715+-.005, nrch .642+-.038, scbch .712+-.003; rate 0.5 baseline
.700+-.003, nrch .647+-.020, scbch .700+-.005; rate 0.8 baseline .666+-.012, nrch .631+-.018,
scbch .679+-.003 (better than the baseline by more than the pooled std only at 0.8). CSCC off is
within noise of the full method (.710/.698/.677); BSCH off collapses the codes (.58/.58/.57).
CSCC weight AUC .72-.77; NRCH's separator AUC .46-.58 (its classifier barely fits in the
preset's 48 warm-up steps, so the separator discards 53-76% of rows at random).

Measured 2026-11-25 (``--epochs 30``, 3 seeds, avg of i2t and t2i) at rates 0.5 / 0.8: baseline
.700+-.003 / .666+-.012 (as before); nrch-separator-off .658+-.008 / .651+-.006 (above NRCH with
its separator: the separator costs .01-.02, and the RCH objective alone is .04 / .015 below the
baseline in this preset); nrch-fast-classifier (classifier_lr 1e-2) .637+-.006 / .626+-.019 with
separator AUC .65 / .66 (better separation, but it still keeps only 31-57% of the rows);
``--nrch-lr 1e-3`` for every parameter collapses the codes (2-38 distinct query codes, .556 /
.563). benchmarks/diag_nrch_separator.py explains the separator's AUC.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from cmhash.threads import limit_native_threads

# Size every native pool (OpenMP, OpenBLAS, MKL, numba) to --threads before numpy and torch load,
# as the workflow's jobs do: two benchmark processes side by side otherwise spin-wait on each
# other's cores (2026-12-06: a DCMH cell took 33-48 s alone, and none finished in 11 min beside a
# second process with only torch's pool at one thread; with every pool sized, two side by side
# took 106 and 113 s while the test suite also ran, with the recorded mAP).
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=1)
limit_native_threads(_pre.parse_known_args()[0].threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import load_embedded, train_cell  # noqa: E402  (benchmarks/common.py)

from cmhash.evaluate import map_at_all  # noqa: E402
from cmhash.methods import get_method, resolve_hparams  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / "results" / "datasets" / "embedded"
VARIANTS = {  # name -> (registered method, extra overrides on top of the method's preset)
    "baseline": ("baseline", {}),
    "nrch": ("nrch", {}),
    "nrch-fast-classifier": ("nrch", {"classifier_lr": 1e-2}),  # extension: W at its own rate
    "nrch-separator-off": ("nrch", {"separator": False}),  # ablation: every row every epoch
    "scbch": ("scbch", {}),
    "scbch-cscc-off": ("scbch", {"cscc": False}),
    "scbch-bsch-off": ("scbch", {"bsch": False}),
    "scbch-cross": ("scbch", {"cscc_similarity": "cross"}),  # option: the paper's cross-modal neighbours
    "scbch-paper-order": ("scbch", {"bsch_start": "paper"}),  # option: BSCH with CSCC after warm-up
    "scbch-code-weights": ("scbch", {"alpha": 0.3, "beta": 0.7}),  # option: the code's argument defaults
    # the label-free reference rows (issue 17): they read no label, so one run per seed serves every rate
    "ucch": ("ucch", {}),
    "djsrh": ("djsrh", {}),
    "dgcpn": ("dgcpn", {}),
    # the supervised and robust comparison rows (issue 18)
    "dcmh": ("dcmh", {}),
    "dchuc": ("dchuc", {}),
    "rshnl": ("rshnl", {}),
}
MAIN_VARIANTS = ["baseline", "nrch", "nrch-separator-off", "scbch", "scbch-cscc-off", "scbch-bsch-off"]
LABEL_FREE_VARIANTS = ["ucch", "djsrh", "dgcpn"]
COMPARISON_VARIANTS = ["dcmh", "dchuc", "rshnl"]
DIRECTIONS = ("i2t", "t2i", "avg")
DIAGNOSTICS = ("select/auc", "select/weight_clean", "select/weight_noisy", "select/kept_fraction")


PUBLISHED_EPOCHS = {"baseline": 50, "scbch": 50, "nrch": 100, "ucch": 20, "djsrh": 80, "dgcpn": 100,
                    "dcmh": 1000, "dchuc": 180, "rshnl": 150}


def preset(method: str, epochs: int | None, hidden: int, scbch_lr: float, nrch_lr: float, n_fit: int = 900) -> dict:
    """The small preset's overrides for a registered ``method`` (see the module docstring);
    ``epochs`` None = the method's published number of epochs; ``n_fit`` the rows it is fitted on
    (DGCPN's neighbourhood and DCHUC's sample are published as counts for 5,000 / 2,000-row sets
    and are scaled to it)."""
    epochs = epochs or PUBLISHED_EPOCHS[method]
    widths = {"image_hidden": [hidden, hidden], "text_hidden": [hidden]}
    if method == "scbch":
        s = epochs / 50.0
        return {**widths, "epochs": epochs, "warmup_epochs": max(1, round(5 * s)), "eval_every": 1, "lr": scbch_lr}
    if method == "nrch":
        s = epochs / 100.0
        return {**widths, "epochs": epochs, "warmup_epochs": round(19 * s), "eval_every": max(1, round(20 * s)),
                "num_gradual": max(1, round(100 * s)), "lr": nrch_lr}
    if method == "ucch":  # batch 64 (published 256): ~14 steps an epoch on 900 rows instead of ~70 on MIRFlickr
        return {**widths, "epochs": epochs, "batch_size": 64, "lr": 1e-3, "negatives": min(4096, n_fit)}
    if method == "djsrh":  # the hash layer on the image features, as published; text 4096 -> hidden
        return {"text_hidden": [hidden], "epochs": epochs, "eval_every": max(1, epochs // 4)}
    if method == "dgcpn":  # k = 2,000 of MIRFlickr's 5,000-row training set: the same 40% here, scale = 2k as published
        k = max(2, round(0.4 * n_fit))
        return {"image_hidden": hidden, "text_hidden": hidden, "epochs": epochs, "neighbours": k, "scale": 2.0 * k,
                "eval_every": max(1, epochs // 10)}
    if method == "dcmh":  # the hash layer on the image features, as published; text 8192 -> hidden
        return {"text_hidden": [hidden], "epochs": epochs, "eval_every": max(2, epochs // 10)}
    if method == "dchuc":  # a sample of 2,000 rows an iteration on NUS-WIDE: all but a few of the fitting rows here
        return {"text_hidden": hidden, "epochs": epochs, "num_samples": min(2000, n_fit), "eval_every": 6}
    if method == "rshnl":
        return {"image_hidden": [hidden, hidden], "text_hidden": [hidden, hidden], "centre_hidden": [hidden, hidden],
                "epochs": epochs, "eval_every": max(1, epochs // 15)}
    return {**widths, "epochs": epochs, "eval_every": max(1, round(5 * epochs / 50))}


def run_one(ds, variant: str, overrides: dict, rate: float, seed: int, bits: int, protocol: str,
            standardize: bool = False) -> dict:
    """Train one cell and score the selected model on query vs database with clean labels."""
    _, result, seconds = train_cell(ds, VARIANTS[variant][0], "nrch", rate, seed, bits, protocol, overrides,
                                    standardize=standardize)
    q, db = ds.labels[ds.splits.query], ds.labels[ds.splits.database]
    c = result.codes
    row = {"variant": variant, "rate": rate, "seed": seed,
           "i2t": map_at_all(c["query_image"], c["database_text"], q, db),
           "t2i": map_at_all(c["query_text"], c["database_image"], q, db),
           "selected_epoch": result.selected_epoch, "seconds": seconds,
           "distinct_image_codes": len(np.unique(c["query_image"], axis=0)),
           "distinct_text_codes": len(np.unique(c["query_text"], axis=0))}
    row["avg"] = (row["i2t"] + row["t2i"]) / 2
    scored = [r for r in result.history if "select/auc" in r]
    if scored:
        for key in DIAGNOSTICS:
            if key in scored[-1]:
                row[key] = scored[-1][key]
        row["select/auc_first"] = scored[0]["select/auc"]
    return row


def write_csv(path: Path, runs: list[dict]) -> None:
    """Every run so far, one row each."""
    keys = sorted({k for r in runs for k in r})
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(runs)


def read_csvs(paths: list[Path]) -> list[dict]:
    """Runs written by ``--csv``, numbers parsed back (empty cells dropped); a (variant, rate,
    seed) run found in several files counts once (the last file's)."""
    runs: dict[tuple, dict] = {}
    for path in paths:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                run = {k: (v if k == "variant" else float(v)) for k, v in row.items() if v != ""}
                runs[(run["variant"], run["rate"], run["seed"])] = run
    return list(runs.values())


def summarise(runs: list[dict], rates: list[float], variants: list[str]) -> None:
    """Mean +- std table and the verdicts against the baseline."""
    print()
    print(f"{'rate':>5} {'variant':>15} " + " ".join(f"{d:>15}" for d in DIRECTIONS) + f" {'CSCC/sep AUC':>13}")
    for rate in rates:
        stats = {}
        for v in variants:
            cell = [r for r in runs if r["rate"] == rate and r["variant"] == v]
            if not cell:
                continue
            stats[v] = {d: (float(np.mean([r[d] for r in cell])),
                            float(np.std([r[d] for r in cell], ddof=1)) if len(cell) > 1 else 0.0)
                        for d in DIRECTIONS}
            aucs = [r["select/auc"] for r in cell if "select/auc" in r]
            auc = f"{np.mean(aucs):.3f}" if aucs else "-"
            print(f"{rate:>5} {v:>15} " + " ".join(f"{stats[v][d][0]:.4f}±{stats[v][d][1]:.4f}".rjust(15)
                                                  for d in DIRECTIONS) + f" {auc:>13}")
        for v in ("scbch", "nrch"):
            if v not in stats or "baseline" not in stats:
                continue
            verdicts = []
            for d in DIRECTIONS:
                (mm, sm), (mb, sb) = stats[v][d], stats["baseline"][d]
                pooled = float(np.sqrt((sm**2 + sb**2) / 2))
                verdicts.append(f"{d} {mm - mb:+.4f} (pooled std {pooled:.4f}: "
                                f"{'better' if mm - mb > pooled else 'NOT better'})")
            print(f"{'':>5} {v + '-base':>15} " + "; ".join(verdicts))
        free = {v: stats[v]["avg"][0] for v in stats if not get_method(VARIANTS[v][0]).reads_labels}
        if free:  # the floor a method that reads labels has to clear (issue 17)
            best = max(free, key=free.get)
            below = [v for v in stats if v not in free and stats[v]["avg"][0] < free[best]]
            print(f"{'':>5} {'label-free':>15} best {best} avg {free[best]:.4f}; below it: "
                  + (", ".join(f"{v} ({stats[v]['avg'][0] - free[best]:+.4f})" for v in below) or "none"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset-dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--protocol", default="sound", choices=["sound", "paper"])
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs of every method (default: each method's published count, 50 / 50 / 100)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--scbch-lr", type=float, default=3e-4, help="SCBCH Adam lr (published 1e-4)")
    ap.add_argument("--nrch-lr", type=float, default=1e-4, help="NRCH RMSprop lr (published 1e-5)")
    ap.add_argument("--variants", nargs="+", default=MAIN_VARIANTS, choices=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads and every native pool's size (cmhash.threads, set before numpy loads)")
    ap.add_argument("--standardize", action="store_true",
                    help="z-score the features with the training rows' statistics (datasets.<name>.standardize_features)")
    ap.add_argument("--csv", type=Path, default=None, help="also write every run to this CSV")
    ap.add_argument("--summarise", type=Path, nargs="+", metavar="CSV",
                    help="train nothing: print the table of the runs in these --csv files (e.g. rates or seeds "
                         "run as separate processes)")
    args = ap.parse_args()
    if args.summarise:
        runs = read_csvs(args.summarise)
        summarise(runs, sorted({r["rate"] for r in runs}), [v for v in VARIANTS if any(r["variant"] == v for r in runs)])
        return 0

    torch.set_num_threads(args.threads)
    ds = load_embedded(args.dataset_dir)
    if ds is None:
        return 2
    print(f"dataset {args.dataset_dir}: {ds.labels.shape[0]} rows, train {ds.splits.train.size} "
          f"(validation {ds.splits.validation.size}), query {ds.splits.query.size}, database "
          f"{ds.splits.database.size}, {ds.n_classes} classes; {args.bits} bits, protocol {args.protocol}, "
          f"seeds {args.seeds}, torch threads {args.threads}, standardized features {args.standardize}")
    overrides = {}
    for v in args.variants:
        method, extra = VARIANTS[v]
        n_fit = int(ds.splits.train.size - (ds.splits.validation.size if args.protocol == "sound" else 0))
        overrides[v] = {**preset(method, args.epochs, args.hidden, args.scbch_lr, args.nrch_lr, n_fit), **extra}
        hp, _ = resolve_hparams(method, None, overrides[v])
        shown = sorted(set(overrides[v]) | ({"k", "margin", "shift", "alpha", "beta"} if method == "scbch" else set()))
        print(f"preset {v}: " + ", ".join(f"{k}={hp[k]}" for k in shown))
    print("small preset: hidden widths narrowed, learning rates raised (epoch-based settings scaled when --epochs "
          "is given); see the module docstring. Same code as the workflow.")

    runs: list[dict] = []
    t_all = time.perf_counter()

    def report(row: dict, label: str) -> None:
        diag = "  ".join(f"{k[7:]}={row[k]:.3f}" for k in row if k.startswith("select/"))
        print(f"  {label} seed {row['seed']} {row['variant']:>15}: i2t {row['i2t']:.4f} t2i {row['t2i']:.4f} "
              f"(epoch {row['selected_epoch']}, {row['seconds']:.0f} s, distinct query codes "
              f"{row['distinct_image_codes']}/{row['distinct_text_codes']}) {diag}", flush=True)
        if args.csv:  # rewritten after every run, so an interrupted benchmark keeps what it did
            write_csv(args.csv, runs)

    label_free = [v for v in args.variants if not get_method(VARIANTS[v][0]).reads_labels]
    for seed in args.seeds:  # a label-free method reads no label: one run per seed fills every rate
        for v in label_free:
            row = run_one(ds, v, overrides[v], 0.0, seed, args.bits, args.protocol, args.standardize)
            runs.extend({**row, "rate": rate, "label_free": 1} for rate in args.rates)
            report(row, "label-free")
    for rate in args.rates:
        for seed in args.seeds:
            for v in args.variants:
                if v in label_free:
                    continue
                runs.append(run_one(ds, v, overrides[v], rate, seed, args.bits, args.protocol, args.standardize))
                report(runs[-1], f"rate {rate}")
    print(f"total {time.perf_counter() - t_all:.0f} s")
    summarise(runs, args.rates, args.variants)
    if len(args.seeds) < 2:
        print("(one seed: std is 0, the comparison is indicative only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
