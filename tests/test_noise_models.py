"""Tests of the noise models the papers never tried (issue 20): ``sym`` on multi-label rows,
``missing``, ``classcond`` and ``instance``; their feature declarations, the statistics the
noise stage records, the real MIRFlickr labels (tags ``YAll`` as the features) and the
workflow's inputs of a noise job that reads features."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from scipy import stats

from cmhash.data.canonical import Dataset, Splits, write_dataset
from cmhash.errors import DataError
from cmhash.noise import (
    NOISE_MODELS,
    Features,
    confusion_weights,
    corrupt,
    noise_statistics,
    noisy_row_count,
)
from tests.helpers import REPO, SHARED_DATA

MIR = SHARED_DATA / "mirflickr25k"
NEW = ("sym", "missing", "classcond", "instance")


def multilabel(n: int = 1000, c: int = 24, seed: int = 0, p: float = 0.15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < p).astype(np.uint8)
    y[np.arange(n), rng.integers(0, c, n)] = 1
    return y


def clustered(n: int = 600, c: int = 5, dim: int = 12, seed: int = 0, multi: bool = False, spread: float = 1.0):
    """Labels and two feature modalities that are noisy linear images of them (learnable)."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, c), np.uint8)
    y[np.arange(n), rng.integers(0, c, n)] = 1
    if multi:
        y |= (rng.random((n, c)) < 0.2).astype(np.uint8)
    image = y @ rng.normal(size=(c, dim)) + spread * rng.normal(size=(n, dim))
    text = y @ rng.normal(size=(c, dim // 2)) + spread * rng.normal(size=(n, dim // 2))
    return y, (image.astype(np.float32), text.astype(np.float32))


def swap_parts(clean: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per changed row: the class turned off and the class turned on (exactly one each)."""
    d = noisy.astype(int) - clean
    rows = (d != 0).any(1)
    assert ((d == -1).sum(1)[rows] == 1).all() and ((d == 1).sum(1)[rows] == 1).all()
    return (d[rows] == -1).argmax(1), (d[rows] == 1).argmax(1)


def sklearn_margins(y: np.ndarray, features, sparse: bool = False) -> np.ndarray:
    """Margins from a logistic regression fitted here, independently of cmhash.noise: the
    standardised concatenated features, multinomial (one-hot) or one-vs-rest (multi-label).
    ``sparse``: skip the centring and fit on a CSR matrix (the same solution: the unpenalised
    intercept absorbs the shift), for the tag bag-of-words."""
    import scipy.sparse as sparse_matrix
    from sklearn.linear_model import LogisticRegression

    blocks = []
    for f in features:
        f = np.asarray(f, np.float64)
        sd = f.std(0)
        blocks.append((f[:, sd > 0] - (0 if sparse else f[:, sd > 0].mean(0))) / sd[sd > 0])
    x = sparse_matrix.csr_matrix(np.hstack(blocks)) if sparse else np.hstack(blocks)
    if (y.sum(1) == 1).all():
        scores = LogisticRegression(max_iter=300).fit(x, y.argmax(1)).decision_function(x)
    else:
        scores = np.stack([LogisticRegression(max_iter=300).fit(x, y[:, c]).decision_function(x)
                           for c in range(y.shape[1])], axis=1)
    pos = y.astype(bool)
    return np.where(pos, scores, np.inf).min(1) - np.where(pos, -np.inf, scores).max(1)


# ----------------------------------------------------------------------------- declarations

def test_feature_declarations():
    assert {n for n, m in NOISE_MODELS.items() if m.may_read_features} == {"classcond", "instance"}
    one_hot, multi = clustered()[0], multilabel(50)
    assert NOISE_MODELS["classcond"].reads_features(one_hot) and not NOISE_MODELS["classcond"].reads_features(multi)
    assert NOISE_MODELS["instance"].reads_features(one_hot) and NOISE_MODELS["instance"].reads_features(multi)
    for name in ("nrch", "dcgmh", "sym", "missing"):
        assert not NOISE_MODELS[name].reads_features(one_hot)


@pytest.mark.parametrize("model,labels", [("instance", multilabel(50)), ("instance", clustered(50)[0]),
                                          ("classcond", clustered(50)[0])])
def test_models_reading_features_need_them(model, labels):
    with pytest.raises(DataError, match="features"):
        corrupt(labels, model, 0.2, 0)
    with pytest.raises(DataError, match="expected 50 rows"):
        corrupt(labels, model, 0.2, 0, features=(np.zeros((49, 3)),))
    corrupt(labels, model, 0.0, 0)  # nothing drawn, nothing read


def test_classcond_multilabel_does_not_read_features():
    y = multilabel(300)
    a = corrupt(y, "classcond", 0.3, 1)
    b = corrupt(y, "classcond", 0.3, 1, features=(np.random.default_rng(0).normal(size=(300, 4)),))
    assert a.noisy.tobytes() == b.noisy.tobytes()


# ----------------------------------------------------------------------------- counts, identity

@pytest.mark.parametrize("model", ["missing", "classcond", "instance"])
@pytest.mark.parametrize("rate,n", [(0.2, 400), (0.5, 399), (0.29, 100)])
def test_exact_row_counts(model, rate, n):
    y, feats = clustered(n, multi=True, seed=2)
    res = corrupt(y, model, rate, seed=3, features=feats)
    assert res.n_corrupted == noisy_row_count(rate, n) == math.floor(rate * n + 1e-9)


@pytest.mark.parametrize("model,multi", [(m, multi) for m in NEW for multi in (True, False)
                                         if multi or m != "missing"])  # missing: multi-label only
def test_bit_identity_for_a_seed(model, multi):
    y, feats = clustered(500, multi=multi, seed=4)
    before = y.copy()
    a, b = (corrupt(y, model, 0.4, seed=7, features=feats) for _ in range(2))
    np.testing.assert_array_equal(y, before)
    assert a.noisy.tobytes() == b.noisy.tobytes() and a.corrupted.tobytes() == b.corrupted.tobytes()
    assert a.noisy.dtype == np.uint8
    np.testing.assert_array_equal(a.corrupted, (a.noisy != y).any(1))
    c = corrupt(y, model, 0.4, seed=8, features=feats)
    if model == "instance":  # deterministic given the features: no tie among distinct feature rows
        assert a.noisy.tobytes() == c.noisy.tobytes()
    else:
        assert a.noisy.tobytes() != c.noisy.tobytes()


def test_instance_seed_breaks_ties_only():
    y, (image, text) = clustered(200, seed=5)
    # duplicate every row: each margin occurs twice. 101 rows: 50 pairs and one copy of the
    # 51st pair, which copy decided by the seed
    y2, feats = np.vstack([y, y]), (np.vstack([image, image]), np.vstack([text, text]))
    results = [corrupt(y2, "instance", 101 / 400, seed=s, features=feats) for s in range(8)]
    assert {r.n_corrupted for r in results} == {101}
    assert len({r.corrupted.tobytes() for r in results}) == 2  # the two copies of the boundary pair
    originals = {tuple(np.unique(np.flatnonzero(r.corrupted) % 200)) for r in results}
    assert len(originals) == 1 and len(next(iter(originals))) == 51


# ----------------------------------------------------------------------------- sym

def test_sym_multilabel_keeps_label_counts_like_rshnl():
    n = 4000
    y = multilabel(n, c=24, seed=1)
    res = corrupt(y, "sym", 0.5, seed=2)
    k = noisy_row_count(0.5, n)
    picked = np.random.default_rng(2).choice(n, size=k, replace=False)  # the first draw
    untouched = np.setdiff1d(np.arange(n), picked)
    np.testing.assert_array_equal(res.noisy[untouched], y[untouched])
    np.testing.assert_array_equal(res.noisy.sum(1), y.sum(1))  # as many classes as the row had
    assert res.corrupted[picked].mean() > 0.95 and not res.corrupted[untouched].any()
    # the new classes are uniform over all 24 (drawn without regard to the old ones)
    new = res.noisy[picked].sum(0) / y[picked].sum()
    assert stats.chisquare(res.noisy[picked].sum(0)).pvalue > 1e-3, new
    # a row with no label stays empty; one-hot rows keep the single-label draw
    y[:10] = 0
    assert (corrupt(y, "sym", 0.9, seed=0).noisy[:10] == 0).all()


# ----------------------------------------------------------------------------- missing

def test_missing_only_removes_a_proper_subset():
    y = multilabel(3000, seed=3)
    res = corrupt(y, "missing", 0.6, seed=4)
    d = res.noisy.astype(int) - y
    assert (d <= 0).all()
    rows = res.corrupted
    assert res.n_corrupted == 1800
    assert (y[rows].sum(1) >= 2).all()
    assert ((-d[rows]).sum(1) >= 1).all() and (res.noisy[rows].sum(1) >= 1).all()


def test_missing_subset_is_uniform():
    # three labels: 6 non-empty proper subsets, 3 of size 1 and 3 of size 2, each equally likely
    y = np.zeros((12000, 5), np.uint8)
    y[:, :3] = 1
    res = corrupt(y, "missing", 0.5, seed=9)
    lost = y[res.corrupted] - res.noisy[res.corrupted]
    patterns = np.unique(lost[:, :3], axis=0, return_counts=True)[1]
    assert patterns.size == 6 and stats.chisquare(patterns).pvalue > 1e-3


def test_missing_errors():
    with pytest.raises(DataError, match="single-label"):
        corrupt(clustered(100)[0], "missing", 0.2, 0)
    y = multilabel(100, seed=0)
    y[:60] = 0
    y[:60, 0] = 1  # 40 rows keep >= 2 labels at most
    eligible = int((y.sum(1) >= 2).sum())
    assert corrupt(y, "missing", eligible / 100, 0).n_corrupted == eligible
    with pytest.raises(DataError, match=rf"rate 0\.5 needs 50 rows .* only {eligible} of 100"):
        corrupt(y, "missing", 0.5, 0)


# ----------------------------------------------------------------------------- classcond

def test_classcond_multilabel_follows_cooccurrence():
    y = np.zeros((1600, 6), np.uint8)
    y[:300, [0, 1]] = 1       # 0 co-occurs with 1 three times as often as with 2
    y[300:400, [0, 2]] = 1
    y[400:1200, 0] = 1        # the rows whose confusions are counted: {0} -> 1 or 2, never 3..5
    y[1200:, [3, 4, 5]] = 1
    res = corrupt(y, "classcond", 0.5, seed=0)
    assert res.n_corrupted == 800
    np.testing.assert_array_equal(res.noisy.sum(1), y.sum(1))
    single = np.flatnonzero(res.corrupted[400:1200]) + 400
    added = (res.noisy[single].astype(int) - y[single] == 1).argmax(1)
    assert set(added.tolist()) <= {1, 2}
    assert stats.binomtest(int((added == 1).sum()), added.size, 0.75).pvalue > 1e-3
    # the draw follows the co-occurrence wherever the row's negatives carry any
    weights = confusion_weights(y)
    removed, added_all = swap_parts(y, res.noisy)
    changed = np.flatnonzero(res.corrupted)
    has_mass = (weights[removed] * (1 - y[changed])).sum(1) > 0
    assert (weights[removed, added_all][has_mass] > 0).all()


def test_classcond_single_label_follows_feature_similarity():
    rng = np.random.default_rng(0)
    n = 3000
    cls = rng.integers(0, 3, n)
    y = np.eye(3, dtype=np.uint8)[cls]
    centres = np.array([[3.0, 0.0], [3.0, 1.5], [-6.0, -1.5]])  # 0 and 1 alike, 2 unlike both
    image = centres[cls] + 0.3 * rng.normal(size=(n, 2))
    text = rng.normal(size=(n, 3))
    res = corrupt(y, "classcond", 0.4, seed=1, features=(image, text))
    assert res.n_corrupted == 1200
    removed, added = swap_parts(y, res.noisy)
    assert (added[removed == 0] == 1).all() and (added[removed == 1] == 0).all()
    w = confusion_weights(y, Features.from_modalities((image, text), n))
    assert w[0, 1] > 0.5 and w[0, 2] == 0 and w[2, 0] == 0
    # class 2 resembles no class: its rows fall back to a uniform draw over the others
    assert set(added[removed == 2].tolist()) == {0, 1}


# ----------------------------------------------------------------------------- instance

@pytest.mark.parametrize("multi", [False, True])
def test_instance_corrupts_the_smallest_margins(multi):
    y, feats = clustered(600, multi=multi, seed=6, spread=2.0)
    res = corrupt(y, "instance", 0.2, seed=0, features=feats)
    assert res.n_corrupted == 120
    swap_parts(y, res.noisy)  # one true label replaced by one wrong class
    margin = sklearn_margins(y, feats)  # an independent fit, not cmhash's
    eligible = np.isfinite(margin)
    corrupted_max = margin[res.corrupted].max()
    untouched_min = margin[~res.corrupted & eligible].min()
    assert corrupted_max <= untouched_min + 0.02  # up to the two fits' solver tolerance
    # ignoring the features (constant ones, so only the class priors) would pick other rows
    constant = corrupt(y, "instance", 0.2, seed=0, features=(np.random.default_rng(1).normal(size=(600, 8)),))
    assert (constant.corrupted & res.corrupted).sum() < 0.6 * 120


def test_instance_replaces_with_the_best_wrong_class():
    from sklearn.linear_model import LogisticRegression

    y, feats = clustered(500, seed=8, spread=2.0)
    res = corrupt(y, "instance", 0.3, seed=0, features=feats)
    x = np.hstack([(np.asarray(f, np.float64) - f.mean(0)) / f.std(0) for f in feats])
    scores = LogisticRegression(max_iter=300).fit(x, y.argmax(1)).decision_function(x)
    rows = np.flatnonzero(res.corrupted)
    wrong = np.where(y[rows].astype(bool), -np.inf, scores[rows]).argmax(1)
    assert (res.noisy[rows].argmax(1) == wrong).mean() > 0.99


def test_instance_errors():
    y = clustered(100)[0]
    y[:] = 0
    y[:, 0] = 1
    with pytest.raises(DataError, match="fewer than two classes"):
        corrupt(y, "instance", 0.2, 0, features=(np.random.default_rng(0).normal(size=(100, 3)),))
    y = np.ones((10, 4), np.uint8)
    with pytest.raises(DataError, match="rate 0.5 needs 5 rows .* only 0 of 10"):
        corrupt(y, "instance", 0.5, 0, features=(np.random.default_rng(0).normal(size=(10, 3)),))
    with pytest.raises(DataError, match="'classcond': rate 0.5 needs 5 rows"):
        corrupt(y, "classcond", 0.5, 0)


# ----------------------------------------------------------------------------- statistics

def test_noise_statistics():
    clean = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]], np.uint8)
    noisy = np.array([[0, 1, 0], [0, 1, 0], [1, 1, 0]], np.uint8)
    st = noise_statistics(clean, noisy, ["a", "b", "c"])
    assert st == {"rows": 3, "rows_changed": 2, "labels_removed": 2, "labels_added": 1,
                  "removed_per_class": [1, 0, 1], "added_per_class": [0, 1, 0], "classes": ["a", "b", "c"]}


@pytest.mark.parametrize("model", ["instance", "nrch"])
def test_stage_noise_records_statistics_and_reads_features_only_when_declared(tmp_path, model):
    from cmhash.pipeline import stage_noise

    y, (image, text) = clustered(120, multi=True, seed=1)
    order = np.random.default_rng(0).permutation(120)
    splits = Splits(query=order[:20], train=order[20:], database=order[20:], validation=order[20:30])
    write_dataset(tmp_path / "ds", Dataset(image=image, text=text, labels=y, splits=splits,
                                           meta={"source": "test", "classes": [f"c{i}" for i in range(5)]}))
    stage_noise(tmp_path / "ds", model, 0.25, 0, tmp_path / "noise")
    meta = json.loads((tmp_path / "noise" / "noise.json").read_text())
    st = meta["statistics"]
    assert meta["n_corrupted"] == st["rows_changed"] == 25 and st["rows"] == 100
    assert st["labels_removed"] == st["labels_added"] == 25 and sum(st["added_per_class"]) == 25
    assert st["classes"] == [f"c{i}" for i in range(5)]
    assert ("features" in meta) == (model == "instance")
    expected = corrupt(y[splits.train], model, 0.25, 0, features=(image[splits.train], text[splits.train]))
    np.testing.assert_array_equal(np.load(tmp_path / "noise" / "noisy_labels.npy"), expected.noisy)


# ----------------------------------------------------------------------------- real MIRFlickr labels

@pytest.fixture(scope="module")
def mirflickr():
    if not MIR.is_dir():
        pytest.skip(f"{MIR} not present: the real MIRFlickr labels and tags (../shared/data) are needed")
    from scipy.io import loadmat

    labels = loadmat(MIR / "mirflickr25k-lall.mat")["LAll"][2000:12000].astype(np.uint8)  # NRCH's training rows
    tags = loadmat(MIR / "mirflickr25k-yall.mat")["YAll"][2000:12000]
    return labels, tags


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_mirflickr_statistics(mirflickr, rate):
    labels, _ = mirflickr
    n, k = labels.shape[0], noisy_row_count(rate, 10000)
    counts = labels.sum(1)
    # sym: every picked row keeps its label count; few pick their own set again
    st = noise_statistics(labels, corrupt(labels, "sym", rate, 0).noisy)
    assert 0.98 * k < st["rows_changed"] <= k and st["labels_removed"] == st["labels_added"]
    # missing: exactly k rows, only removals, at least k and at most k * (n_labels - 1)
    res = corrupt(labels, "missing", rate, 0)
    st = noise_statistics(labels, res.noisy)
    assert st["rows_changed"] == k and st["labels_added"] == 0
    assert k <= st["labels_removed"] <= (counts[res.corrupted] - 1).sum()
    # roughly half of a row's labels are lost (uniform subsets): within 10% of the expectation
    expected = sum((m * 2 ** (m - 1) - m) / (2 ** m - 2) for m in counts[res.corrupted])
    assert abs(st["labels_removed"] - expected) < 0.1 * expected
    # classcond: one swap per row, towards classes that co-occur with the removed one
    res = corrupt(labels, "classcond", rate, 0)
    st = noise_statistics(labels, res.noisy)
    assert st["rows_changed"] == st["labels_removed"] == st["labels_added"] == k
    removed, added = swap_parts(labels, res.noisy)
    weights = confusion_weights(labels)
    has_mass = (weights[removed] * (1 - labels[res.corrupted])).sum(1) > 0
    assert has_mass.mean() > 0.99 and (weights[removed, added][has_mass] > 0).all()
    # compared with nrch's uniform targets, the added classes follow the co-occurrence: the
    # frequent classes gain more (rank correlation of added counts with class frequency)
    assert stats.spearmanr(st["added_per_class"], labels.sum(0)).statistic > 0.8
    assert n == 10000


def test_mirflickr_missing_eligibility(mirflickr):
    labels, _ = mirflickr
    eligible = int((labels.sum(1) >= 2).sum())
    assert 0.86 < eligible / 10000 < 0.88  # 86.9% of the training rows (issue 20)
    with pytest.raises(DataError, match=rf"rate 0\.9 needs 9000 rows .* only {eligible} of 10000"):
        corrupt(labels, "missing", 0.9, 0)


def test_mirflickr_instance_on_tags(mirflickr):
    labels, tags = mirflickr
    labels, tags = labels[:2500], tags[:2500]  # one-vs-rest fits twice (here and cmhash's): keep it short
    res = corrupt(labels, "instance", 0.2, seed=0, features=(tags,))
    st = noise_statistics(labels, res.noisy)
    assert st["rows_changed"] == st["labels_removed"] == st["labels_added"] == 500
    margin = sklearn_margins(labels, (tags,), sparse=True)
    eligible = np.isfinite(margin)
    # the independent fit agrees up to the solvers' tolerance: the corrupted rows are (almost
    # all) the smallest-margin ones, and far below the untouched rows on average
    threshold = np.sort(margin[eligible])[500]
    assert (margin[res.corrupted] <= threshold + 0.05).mean() > 0.95
    assert np.median(margin[res.corrupted]) < np.median(margin[~res.corrupted & eligible]) - 1.0
    # with the tags shuffled across rows the classifier learns nothing row-specific
    shuffled = corrupt(labels, "instance", 0.2, seed=0, features=(tags[np.random.default_rng(0).permutation(2500)],))
    assert np.median(margin[shuffled.corrupted]) > np.median(margin[res.corrupted]) + 1.0


# ----------------------------------------------------------------------------- workflow

def test_dry_run_gives_instance_noise_the_feature_files(tmp_path):
    """The DAG: a noise job of ``instance`` has the dataset's image.npy and text.npy as inputs;
    one of ``nrch`` does not."""
    for item in ("Snakefile", "workflow", "config", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["grid"].update(noise_models=["nrch", "instance"], noise_rates=[0.5], protocols=["sound"])
    (tmp_path / "config" / "noise.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", "--cores", "1", "--configfile",
                           "config/noise.yaml"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs: dict[str, str] = {}
    lines = (proc.stdout + proc.stderr).splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "rule noise:":
            block = lines[i + 1:i + 6]
            inputs = next(b for b in block if b.strip().startswith("input:"))
            output = next(b for b in block if b.strip().startswith("output:"))
            jobs["instance" if "/instance-0.5/" in output else "nrch"] = inputs
    assert set(jobs) == {"instance", "nrch"}
    for name in ("image.npy", "text.npy"):
        assert f"results/datasets/embedded/{name}" in jobs["instance"]
        assert name not in jobs["nrch"]
    assert "results/datasets/embedded/labels.npy" in jobs["nrch"]


def test_config_validation_accepts_the_new_models():
    from cmhash.config import check_config, validate_schema

    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["grid"]["noise_models"] = ["nrch", "sym", "missing", "classcond", "instance"]
    validate_schema(cfg)
    check_config(cfg)
