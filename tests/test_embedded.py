"""The embedded generator: MIRFlickr raw layout, determinism, label statistics, difficulty."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cmhash.data.embedded import (
    _CONCEPT_TAGS,
    NoiseLevels,
    default_min_tag_count,
    generate_embedded,
    render_scene,
    sample_labels,
    sample_rows,
)
from cmhash.data.mirflickr import MIRFLICKR_CONCEPTS, parse_mirflickr
from cmhash.errors import ConfigError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N_SMALL = 60


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_embedded(tmp_path_factory.mktemp("emb") / "raw", N_SMALL, seed=3, image_size=64)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def label_stats(labels: np.ndarray) -> dict[str, float]:
    """Mean labels per row, single-label share and the extreme concept frequencies."""
    labels = labels[labels.sum(axis=1) > 0].astype(np.int64)
    counts = labels.sum(axis=1)
    freq = labels.mean(axis=0)
    return {"mean": counts.mean(), "single": (counts == 1).mean(), "min_freq": freq.min(), "max_freq": freq.max()}


def assert_mirflickr_like(stats: dict[str, float]) -> None:
    assert 3.3 <= stats["mean"] <= 4.3
    assert 0.07 <= stats["single"] <= 0.18
    assert stats["min_freq"] < 0.04
    assert 0.3 <= stats["max_freq"] <= 0.55


# --- layout ---------------------------------------------------------------------------------

def test_layout_matches_the_mirflickr_archives(small: Path) -> None:
    image_dir = small / "mirflickr"
    ann = small / "mirflickr25k_annotations_v080"
    for n in range(1, N_SMALL + 1):
        with Image.open(image_dir / f"im{n}.jpg") as im:
            assert im.format == "JPEG" and im.size == (64, 64) and im.mode == "RGB"
            im.verify()
        tags = (image_dir / "meta" / "tags" / f"tags{n}.txt").read_text().splitlines()
        assert all(t == t.strip().lower() and t for t in tags)
    assert not (image_dir / f"im{N_SMALL + 1}.jpg").exists()
    assert sorted(p.name for p in ann.glob("*.txt") if not p.stem.endswith("_r1") and p.name != "README.txt") \
        == sorted(f"{c}.txt" for c in MIRFLICKR_CONCEPTS)
    assert (ann / "README.txt").is_file() and list(ann.glob("*_r1.txt"))
    for concept in MIRFLICKR_CONCEPTS:
        ids = [int(x) for x in (ann / f"{concept}.txt").read_text().split()]
        assert ids == sorted(set(ids)) and all(1 <= i <= N_SMALL for i in ids)
        r1 = ann / f"{concept}_r1.txt"
        if r1.exists():  # a "relevant" subset of the concept's images
            assert set(int(x) for x in r1.read_text().split()) <= set(ids)


def test_common_tags_lists_every_tag_above_threshold_by_descending_count(small: Path) -> None:
    image_dir = small / "mirflickr"
    counts: dict[str, int] = {}
    for n in range(1, N_SMALL + 1):
        for t in set((image_dir / "meta" / "tags" / f"tags{n}.txt").read_text().split()):
            counts[t] = counts.get(t, 0) + 1
    lines = [line.split("\t") for line in (image_dir / "doc" / "common_tags.txt").read_text().splitlines()]
    listed = [(t, int(c)) for t, c in lines]
    threshold = default_min_tag_count(N_SMALL)
    assert threshold == 2 and default_min_tag_count(25_000) == 20 and default_min_tag_count(5_000) == 4
    assert listed == sorted(((t, c) for t, c in counts.items() if c >= threshold), key=lambda tc: (-tc[1], tc[0]))
    assert any(c < threshold for c in counts.values())  # rare tags exist and are left out


def test_round_trip_through_the_parser(small: Path) -> None:
    rows = sample_rows(N_SMALL, seed=3)
    corpus = parse_mirflickr(small)
    vocab = set(corpus.vocabulary)
    kept_tags = [[t for t in tags if t in vocab] for tags in rows.tags]
    keep = [i for i in range(N_SMALL) if rows.labels[i].any() and kept_tags[i]]
    assert corpus.classes == list(MIRFLICKR_CONCEPTS)
    assert corpus.ids == [str(i + 1) for i in keep]
    np.testing.assert_array_equal(corpus.labels, rows.labels[keep])
    assert corpus.texts == [kept_tags[i] for i in keep]
    assert corpus.meta["n_raw_rows"] == N_SMALL
    assert corpus.meta["dropped_no_label"] + corpus.meta["dropped_no_tag"] == N_SMALL - len(keep)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in corpus.image_paths)


# --- determinism ----------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = _files(generate_embedded(tmp_path / "a", 12, seed=7, image_size=48))
    b = _files(generate_embedded(tmp_path / "b", 12, seed=7, image_size=48))
    c = _files(generate_embedded(tmp_path / "c", 12, seed=8, image_size=48))
    assert a == b
    assert a.keys() == c.keys()
    differing = [k for k in a if a[k] != c[k]]
    assert sum(k.endswith(".jpg") for k in differing) == 12
    assert any("annotations" in k for k in differing)


def test_bytes_do_not_depend_on_the_interpreter_hash_seed(tmp_path: Path) -> None:
    """Separate interpreters with different PYTHONHASHSEED (set/str hash order) write the same files."""
    script = ("import sys; from cmhash.data.embedded import generate_embedded; "
              "generate_embedded(sys.argv[1], 6, seed=2, image_size=32)")
    for name, hash_seed in (("p1", "1"), ("p2", "2")):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True, env=env)
    assert _files(tmp_path / "p1") == _files(tmp_path / "p2")


# --- label statistics -----------------------------------------------------------------------

def test_generated_label_statistics_follow_mirflickr() -> None:
    labels = sample_labels(2000, seed=11)
    stats = label_stats(labels)
    assert_mirflickr_like(stats)
    assert (labels.sum(axis=1) == 0).mean() < 0.05  # a few unannotated images, as in the real set
    col = {c: j for j, c in enumerate(MIRFLICKR_CONCEPTS)}
    implications = {"dog": "animals", "bird": "animals", "baby": "people", "female": "people", "male": "people",
                    "portrait": "people", "car": "transport", "clouds": "sky", "flower": "plant_life",
                    "tree": "plant_life", "lake": "water", "river": "water", "sea": "water"}
    for child, parent in implications.items():
        rows = labels[:, col[child]] == 1
        assert rows.any() and labels[rows, col[parent]].all(), f"{child} -> {parent}"

    def p(b: str, a: str) -> float:  # P(b | a)
        rows = labels[:, col[a]] == 1
        return labels[rows, col[b]].mean()

    assert p("sky", "sunset") > 0.7 and p("clouds", "sunset") > 0.4
    assert p("indoor", "food") > 0.5 and p("structures", "car") > 0.5
    assert p("sky", "indoor") < 0.1  # indoor scenes rarely show sky


def test_real_label_statistics_are_comparable() -> None:
    path = SHARED_DATA / "mirflickr25k" / "mirflickr25k-lall.mat"
    if not path.is_file():
        pytest.skip("../shared/data not present: no real MIRFlickr labels to compare with")
    import scipy.io

    real = scipy.io.loadmat(str(path))["LAll"]
    assert real.shape == (20015, 24)
    real_stats = label_stats(real)
    assert_mirflickr_like(real_stats)  # the targets hold on the real labels too
    generated = sample_labels(real.shape[0], seed=0)
    gen_stats = label_stats(generated)
    for key in ("mean", "single"):
        assert abs(gen_stats[key] - real_stats[key]) < 0.1 * real_stats[key], key
    kept = generated[generated.sum(axis=1) > 0]
    np.testing.assert_allclose(kept.mean(axis=0), real.mean(axis=0), atol=0.02)
    joint_real = real.T.astype(float) @ real / real.shape[0]
    joint_gen = kept.T.astype(float) @ kept / kept.shape[0]
    np.testing.assert_allclose(joint_gen, joint_real, atol=0.03)


# --- difficulty -----------------------------------------------------------------------------

def _concept_tag_precision(difficulty: float) -> float:
    """Share of tags that belong to the vocabulary of one of the row's concepts."""
    rows = sample_rows(400, seed=5, difficulty=difficulty)
    hits = total = 0
    for labels, tags in zip(rows.labels, rows.tags):
        vocab = {t for c, v in zip(MIRFLICKR_CONCEPTS, labels) if v for t in _CONCEPT_TAGS[c]}
        hits += sum(t in vocab for t in tags)
        total += len(tags)
    return hits / total


def test_difficulty_degrades_text_and_images_not_labels() -> None:
    easy, hard = sample_rows(300, seed=5, difficulty=0.0), sample_rows(300, seed=5, difficulty=1.0)
    np.testing.assert_array_equal(easy.labels, hard.labels)
    assert _concept_tag_precision(0.0) > _concept_tag_precision(1.0) + 0.2

    def roughness(d: float) -> float:
        levels = NoiseLevels.from_difficulty(d)
        images = [np.asarray(render_scene({"sky", "clouds"}, np.random.default_rng(i), 64, levels), dtype=float)
                  for i in range(10)]
        return float(np.mean([np.abs(np.diff(im, axis=1)).mean() for im in images]))

    assert roughness(1.0) > 2 * roughness(0.0)


@pytest.mark.parametrize("size", [32, 45, 200])
def test_every_motif_renders_at_small_and_large_sizes(size: int) -> None:
    levels = NoiseLevels.from_difficulty(1.0)
    subsets = [{c} for c in MIRFLICKR_CONCEPTS] + [set(MIRFLICKR_CONCEPTS), set()]
    for seed in range(4):
        for k, concepts in enumerate(subsets):
            image = render_scene(concepts, np.random.default_rng([seed, k]), size, levels)
            assert image.size == (size, size) and image.mode == "RGB"


def test_bad_arguments_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="difficulty"):
        generate_embedded(tmp_path, 5, seed=0, difficulty=1.5)
    with pytest.raises(ConfigError, match="n_images"):
        generate_embedded(tmp_path, 0, seed=0)
    with pytest.raises(ConfigError, match="image_size"):
        generate_embedded(tmp_path, 5, seed=0, image_size=8)
    with pytest.raises(ConfigError, match="seed"):
        sample_labels(5, seed=-1)
    generate_embedded(tmp_path / "once", 3, seed=0, image_size=32)
    with pytest.raises(ConfigError, match="not empty"):
        generate_embedded(tmp_path / "once", 2, seed=0, image_size=32)
