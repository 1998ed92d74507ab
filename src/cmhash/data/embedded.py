"""``embedded``: a small seeded dataset written in the exact raw layout of MIRFlickr-25K.

It lets the whole pipeline (parsing, VGG19/BoW features, noise, training, evaluation) run
end to end in CI and on a laptop without the 2.9 GB archive. :func:`generate_embedded` writes::

    out_dir/mirflickr/im{N}.jpg                       N = 1..n_images, real JPEGs
    out_dir/mirflickr/meta/tags/tags{N}.txt           one lower-case tag per line
    out_dir/mirflickr/doc/common_tags.txt             ``tag<TAB>count``, descending count
    out_dir/mirflickr25k_annotations_v080/{concept}.txt     1-based image numbers
    out_dir/mirflickr25k_annotations_v080/{concept}_r1.txt  "relevant" subsets
    out_dir/mirflickr25k_annotations_v080/README.txt

which :func:`cmhash.data.mirflickr.parse_mirflickr` reads like the real archives.

Labels follow a latent scene model fitted to the published MIRFlickr-25K labels (``LAll``,
20,015 x 24, the DCMH release): a scene type is drawn, each concept is drawn independently
given the scene, then the concept hierarchy of the real annotations is applied (every dog/bird
row is an animals row, baby/female/male/portrait -> people, car -> transport, clouds -> sky,
flower/tree -> plant_life, lake/river/sea -> water; each holds in >= 99.8% of the real rows).
Rows that come out with no label (about 1%) stay unlabelled in the annotation files, like the
unannotated images of the real collection, and are dropped by the parser.

Tags are drawn from per-concept vocabularies with synonyms, plus tags of absent concepts
(distractors), generic photo tags and rare personal tags (which fall below the common-tag
threshold), and concept tags are omitted at random, so that, as on Flickr, the text is an
incomplete and noisy view of the labels. Images are simple scenes (sky bands, waves, trees,
buildings, figures, vehicles, ...) drawn from the row's concepts, with clutter and noise
(:mod:`cmhash.data.embedded_images` draws them; :func:`render_scene` is re-exported here).

``difficulty`` (0..1) scales every corruption of the two views, never the labels:

============================================  =============
per-concept tag omission probability          0.10 + 0.60 d
tags of absent concepts (Poisson mean)        0.20 + 2.50 d
generic tags (Poisson mean)                   1.00 + 1.50 d
images with no tag at all                     0.03 + 0.05 d
per-concept motif omission probability        0.05 + 0.45 d
motifs of absent concepts (Poisson mean)      0.20 + 2.50 d
clutter shapes (Poisson mean)                 1.00 + 12.0 d
pixel noise (standard deviation, 0..255)      3.00 + 25.0 d
per-channel colour gain (standard deviation)  0.03 + 0.10 d
============================================  =============

The default 0.5 is a starting point: the intended calibration is that a supervised hashing
baseline trained on clean labels reaches a 64-bit mAP@all between 0.6 and 0.85 (note that a
random ranking already scores about 0.56 on the real MIRFlickr labels, because most pairs share
a concept). Raise ``difficulty`` if that baseline scores higher, lower it if it scores less.

Every draw comes from ``numpy.random.default_rng`` streams derived from ``seed`` (labels, tags,
relevance subsets and each image have their own stream), and JPEGs are written with fixed
encoder settings, so the same arguments give byte-identical files.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from cmhash.data.embedded_images import render_scene
from cmhash.data.mirflickr import (
    ANNOTATION_FOLDER,
    COMMON_TAGS_FILE,
    IMAGE_FOLDER,
    MIRFLICKR_CONCEPTS,
    TAGS_SUBDIR,
)
from cmhash.errors import ConfigError
from cmhash.io import save_text

# ---------------------------------------------------------------------------------------------
# Label model. Parameters fitted (EM, 12 latent scene types, 3 restarts) to the published
# MIRFlickr-25K label matrix LAll (20,015 x 24; mean 3.78 labels per row, 12.4% single-label
# rows, concept frequencies 0.9% (baby) .. 42.3% (structures)). Each row of _SCENE_CONCEPT_P
# gives, for one scene type, the probability of each concept (columns in MIRFLICKR_CONCEPTS
# order); for a parent concept it is the probability of the parent *without* any of its
# children, since a child always implies its parent (_PARENT). Scene names are descriptive
# only (after each type's most likely concepts).
# ---------------------------------------------------------------------------------------------
_PARENT: Mapping[str, str] = MappingProxyType({
    "bird": "animals", "dog": "animals",
    "baby": "people", "female": "people", "male": "people", "portrait": "people",
    "car": "transport", "clouds": "sky", "flower": "plant_life", "tree": "plant_life",
    "lake": "water", "river": "water", "sea": "water",
})
_SCENE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("indoor_objects", 0.144),
    ("street_people", 0.140),
    ("buildings", 0.105),
    ("city_sky", 0.095),
    ("cloudy_sky", 0.086),
    ("animals_nature", 0.083),
    ("indoor_people", 0.077),
    ("female_portrait", 0.069),
    ("flowers", 0.052),
    ("seaside", 0.052),
    ("trees_landscape", 0.049),
    ("male_portrait", 0.048),
)
_SCENE_CONCEPT_P: tuple[tuple[float, ...], ...] = (
    # indoor_objects
    (0.146, 0.008, 0.025, 0.004, 0.001, 0.071, 0.058, 0.040, 0.211, 0.946, 0.001, 0.050,
     0.045, 0.047, 0.042, 0.001, 0.001, 0.001, 0.003, 0.005, 0.002, 0.013, 0.016, 0.013),
    # street_people
    (0.023, 0.011, 0.006, 0.109, 0.179, 0.011, 0.629, 0.037, 0.005, 0.030, 0.005, 0.702,
     0.080, 0.206, 0.187, 0.284, 0.020, 0.031, 0.400, 0.726, 0.077, 0.145, 0.328, 0.068),
    # buildings
    (0.063, 0.001, 0.020, 0.078, 0.010, 0.044, 0.105, 0.024, 0.011, 0.161, 0.001, 0.184,
     0.035, 0.014, 0.146, 0.001, 0.001, 0.001, 0.026, 0.997, 0.002, 0.084, 0.077, 0.033),
    # city_sky
    (0.013, 0.001, 0.025, 0.148, 0.018, 0.004, 0.002, 0.035, 0.003, 0.021, 0.007, 0.042,
     0.350, 0.005, 0.102, 0.001, 0.042, 0.017, 0.782, 0.807, 0.110, 0.135, 0.395, 0.080),
    # cloudy_sky
    (0.005, 0.001, 0.016, 0.096, 0.882, 0.003, 0.001, 0.019, 0.001, 0.014, 0.014, 0.016,
     0.116, 0.004, 0.180, 0.001, 0.056, 0.055, 0.975, 0.773, 0.405, 0.114, 0.437, 0.056),
    # animals_nature
    (0.481, 0.001, 0.176, 0.010, 0.035, 0.103, 0.011, 0.017, 0.059, 0.024, 0.040, 0.038,
     0.038, 0.041, 0.498, 0.001, 0.043, 0.041, 0.063, 0.114, 0.012, 0.025, 0.127, 0.180),
    # indoor_people
    (0.017, 0.005, 0.003, 0.013, 0.001, 0.002, 0.426, 0.004, 0.020, 0.858, 0.001, 0.534,
     0.283, 0.156, 0.012, 0.002, 0.001, 0.001, 0.015, 0.220, 0.005, 0.072, 0.008, 0.015),
    # female_portrait
    (0.018, 0.029, 0.003, 0.008, 0.003, 0.006, 0.999, 0.046, 0.009, 0.650, 0.001, 0.007,
     0.095, 0.548, 0.057, 0.793, 0.001, 0.003, 0.009, 0.096, 0.001, 0.009, 0.028, 0.014),
    # flowers
    (0.113, 0.001, 0.014, 0.002, 0.034, 0.009, 0.024, 0.956, 0.008, 0.077, 0.013, 0.002,
     0.039, 0.005, 0.978, 0.001, 0.001, 0.002, 0.070, 0.042, 0.009, 0.003, 0.058, 0.044),
    # seaside
    (0.016, 0.002, 0.074, 0.005, 0.603, 0.015, 0.161, 0.007, 0.001, 0.009, 0.318, 0.238,
     0.088, 0.006, 0.145, 0.034, 0.175, 0.794, 0.736, 0.359, 0.418, 0.253, 0.167, 0.112),
    # trees_landscape
    (0.062, 0.001, 0.040, 0.002, 0.444, 0.030, 0.031, 0.083, 0.001, 0.007, 0.251, 0.050,
     0.038, 0.005, 0.967, 0.003, 0.331, 0.021, 0.793, 0.319, 0.246, 0.073, 0.861, 0.006),
    # male_portrait
    (0.018, 0.079, 0.010, 0.008, 0.001, 0.010, 0.189, 0.015, 0.017, 0.787, 0.001, 0.981,
     0.160, 0.695, 0.033, 0.837, 0.001, 0.002, 0.004, 0.061, 0.001, 0.013, 0.014, 0.020),
)

# Concepts given a "{concept}_r1.txt" file (the real annotations archive has these "relevant"
# subsets, where the concept is salient, for part of the concepts; the parser ignores them),
# and the share of a concept's images listed there.
_RELEVANT_CONCEPTS: tuple[str, ...] = (
    "baby", "bird", "car", "clouds", "dog", "female", "flower", "male", "night", "people",
    "portrait", "river", "sea", "tree",
)
_RELEVANT_SHARE = 0.6

# ---------------------------------------------------------------------------------------------
# Tag model: per-concept vocabularies (most frequent synonym first; drawn with Zipf weights),
# generic photo tags that say nothing about the concepts, and syllables of rare personal tags.
# Some tags are shared between concepts (blue, reflection, bridge, garden), as on Flickr.
# ---------------------------------------------------------------------------------------------
_CONCEPT_TAGS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "animals": ("animal", "animals", "cat", "pet", "zoo", "wildlife", "horse", "kitty", "cow", "pets"),
    "baby": ("baby", "babies", "infant", "newborn", "toddler", "son", "daughter"),
    "bird": ("bird", "birds", "seagull", "duck", "gull", "pigeon", "feathers", "wings"),
    "car": ("car", "cars", "auto", "automobile", "vw", "ford", "vehicle", "porsche"),
    "clouds": ("clouds", "cloud", "cloudy", "storm", "overcast", "cumulus"),
    "dog": ("dog", "dogs", "puppy", "doggy", "labrador", "canine", "terrier"),
    "female": ("girl", "woman", "women", "lady", "girls", "mom", "sister"),
    "flower": ("flower", "flowers", "macro", "bloom", "rose", "petals", "tulip", "daisy", "garden"),
    "food": ("food", "dinner", "lunch", "breakfast", "cake", "yummy", "restaurant", "fruit", "delicious"),
    "indoor": ("indoor", "room", "home", "interior", "kitchen", "table", "window", "indoors", "bedroom"),
    "lake": ("lake", "pond", "reflection", "shore", "lakeside", "reservoir"),
    "male": ("man", "boy", "guy", "men", "dad", "boys", "brother"),
    "night": ("night", "dark", "lights", "nightshot", "longexposure", "moon", "evening"),
    "people": ("people", "person", "friends", "family", "crowd", "party", "kids", "children"),
    "plant_life": ("green", "nature", "grass", "leaves", "plant", "plants", "garden", "leaf", "moss"),
    "portrait": ("portrait", "face", "smile", "eyes", "headshot", "selfportrait", "self"),
    "river": ("river", "stream", "creek", "bridge", "canal", "waterfall"),
    "sea": ("sea", "ocean", "beach", "waves", "coast", "sand", "surf", "seaside"),
    "sky": ("sky", "blue", "bluesky", "horizon", "sun", "skyline"),
    "structures": ("architecture", "building", "city", "church", "buildings", "tower", "urban",
                   "street", "bridge", "castle", "house"),
    "sunset": ("sunset", "sunrise", "dusk", "orange", "golden", "sundown"),
    "transport": ("train", "boat", "bike", "bicycle", "plane", "bus", "ship", "railway", "motorcycle"),
    "tree": ("tree", "trees", "forest", "woods", "branches", "autumn"),
    "water": ("water", "blue", "reflection", "wet", "splash", "drops"),
})
_GENERIC_TAGS: tuple[str, ...] = (
    "canon", "nikon", "explore", "2007", "2008", "travel", "bw", "blackandwhite", "art", "photo",
    "photography", "color", "red", "white", "black", "yellow", "light", "summer", "winter",
    "spring", "holiday", "vacation", "usa", "london", "paris", "newyork", "japan", "italy",
    "california", "digital", "film", "square", "d80", "rebel", "eos", "abigfave", "interestingness",
    "beautiful", "cute", "love", "fun", "happy", "old", "vintage", "hdr", "sony", "olympus",
    "lomo", "2006", "landscape", "closeup", "colors", "canon400d", "naturesfinest", "flickr",
)
_RARE_SYLLABLES: tuple[str, ...] = (
    "ka", "lo", "mi", "ra", "te", "su", "ven", "dor", "al", "is", "bri", "go", "nu", "pe", "zan",
)
_TAGS_PER_CONCEPT_MAX_EXTRA = 2  # 1 + Binomial(2, 0.35) tags per kept concept
_RARE_TAGS_MEAN = 1.5
_DEFAULT_DIFFICULTY = 0.5
#: Real MIRFlickr keeps the tags used by >= 20 of its 25,000 images.
_REAL_MIN_TAG_COUNT, _REAL_N_IMAGES = 20, 25_000
# Fixed encoder settings (4:2:0 chroma, baseline, no optimisation) so that files are reproducible.
_JPEG_SETTINGS: Mapping[str, object] = MappingProxyType({
    "format": "JPEG", "quality": 90, "subsampling": 2, "optimize": False, "progressive": False})
# Stream ids of the seed sequence (one stream per purpose, images per index).
_STREAM_LABELS, _STREAM_TAGS, _STREAM_RELEVANT, _STREAM_IMAGES = 0, 1, 2, 3


@dataclass(frozen=True)
class NoiseLevels:
    """The corruption rates a ``difficulty`` maps to (see the module docstring's table)."""

    tag_omission: float
    distractor_tags: float
    generic_tags: float
    untagged: float
    motif_omission: float
    distractor_motifs: float
    clutter: float
    pixel_noise: float
    colour_jitter: float

    @classmethod
    def from_difficulty(cls, difficulty: float) -> NoiseLevels:
        d = float(difficulty)
        if not 0.0 <= d <= 1.0 or math.isnan(d):
            raise ConfigError(f"embedded: difficulty must lie in [0, 1], got {difficulty}")
        return cls(tag_omission=0.10 + 0.60 * d, distractor_tags=0.20 + 2.5 * d,
                   generic_tags=1.0 + 1.5 * d, untagged=0.03 + 0.05 * d,
                   motif_omission=0.05 + 0.45 * d, distractor_motifs=0.20 + 2.5 * d,
                   clutter=1.0 + 12.0 * d, pixel_noise=3.0 + 25.0 * d, colour_jitter=0.03 + 0.10 * d)


@dataclass
class EmbeddedRows:
    """What the generator means to write, before any parsing: every image's labels (uint8,
    n_images x 24, MIRFLICKR_CONCEPTS order; a row may be empty), its tags (in file order; may
    be empty) and the ``_r1`` relevance subsets (concept -> 1-based image numbers)."""

    labels: np.ndarray
    tags: list[list[str]]
    relevant: dict[str, list[int]]
    classes: tuple[str, ...] = MIRFLICKR_CONCEPTS


def sample_labels(n_images: int, seed: int) -> np.ndarray:
    """Draw ``n_images`` label rows (uint8, n x 24) from the fitted scene model (module
    docstring). Rows may be empty (no concept), as some real images are unannotated."""
    _check_count(n_images)
    if int(seed) < 0:
        raise ConfigError(f"embedded: seed must be >= 0, got {seed}")
    rng = np.random.default_rng([seed, _STREAM_LABELS])
    names = [name for name, _ in _SCENE_WEIGHTS]
    weights = np.array([w for _, w in _SCENE_WEIGHTS])
    probs = np.array(_SCENE_CONCEPT_P)
    if probs.shape != (len(names), len(MIRFLICKR_CONCEPTS)):
        raise AssertionError("scene table does not match the concept list")
    scene = rng.choice(len(names), size=n_images, p=weights / weights.sum())
    labels = (rng.random((n_images, len(MIRFLICKR_CONCEPTS))) < probs[scene]).astype(np.uint8)
    col = {c: j for j, c in enumerate(MIRFLICKR_CONCEPTS)}
    for child, parent in _PARENT.items():
        labels[:, col[parent]] |= labels[:, col[child]]
    return labels


def sample_rows(n_images: int, seed: int, difficulty: float = _DEFAULT_DIFFICULTY) -> EmbeddedRows:
    """Labels, tags and relevance subsets of the ``embedded`` dataset (no files written)."""
    levels = NoiseLevels.from_difficulty(difficulty)
    labels = sample_labels(n_images, seed)
    tag_rng = np.random.default_rng([seed, _STREAM_TAGS])
    tags = [_sample_tags(row, tag_rng, levels) for row in labels]
    rel_rng = np.random.default_rng([seed, _STREAM_RELEVANT])
    relevant = {}
    for concept in _RELEVANT_CONCEPTS:
        members = np.flatnonzero(labels[:, MIRFLICKR_CONCEPTS.index(concept)]) + 1
        keep = rel_rng.random(members.size) < _RELEVANT_SHARE
        relevant[concept] = members[keep].tolist()
    return EmbeddedRows(labels=labels, tags=tags, relevant=relevant)


def default_min_tag_count(n_images: int) -> int:
    """The common-tag threshold scaled from the real one (20 of 25,000 images), at least 2."""
    return max(2, round(_REAL_MIN_TAG_COUNT * n_images / _REAL_N_IMAGES))


def generate_embedded(out_dir: str | os.PathLike, n_images: int, seed: int, image_size: int = 128,
                      difficulty: float = _DEFAULT_DIFFICULTY,
                      min_tag_count: int | None = None) -> Path:
    """Write the ``embedded`` dataset in the MIRFlickr-25K raw layout under ``out_dir`` and
    return ``out_dir`` (the folder :func:`~cmhash.data.mirflickr.parse_mirflickr` reads).

    ``min_tag_count`` (default :func:`default_min_tag_count`) is the number of images a tag
    needs to enter ``doc/common_tags.txt``. Same arguments -> byte-identical files. Raises
    ConfigError for an out-of-range argument or an ``out_dir/mirflickr`` that is not empty.
    """
    if int(image_size) < 32:
        raise ConfigError(f"embedded: image_size must be >= 32 pixels, got {image_size}")
    rows = sample_rows(n_images, seed, difficulty)
    levels = NoiseLevels.from_difficulty(difficulty)
    min_count = default_min_tag_count(n_images) if min_tag_count is None else int(min_tag_count)
    if min_count < 1:
        raise ConfigError(f"embedded: min_tag_count must be >= 1, got {min_tag_count}")

    out_dir = Path(out_dir)
    image_dir = out_dir / IMAGE_FOLDER
    if image_dir.exists() and any(image_dir.iterdir()):
        raise ConfigError(f"embedded: {image_dir} already exists and is not empty; delete it or choose "
                          f"another folder (stale images would be parsed with the new ones)")
    tags_dir = image_dir / TAGS_SUBDIR
    ann_dir = out_dir / ANNOTATION_FOLDER
    for folder in (tags_dir, image_dir / COMMON_TAGS_FILE.parent, ann_dir):
        folder.mkdir(parents=True, exist_ok=True)

    for i in range(n_images):
        number = i + 1
        present = {c for c, v in zip(MIRFLICKR_CONCEPTS, rows.labels[i]) if v}
        image_rng = np.random.default_rng([seed, _STREAM_IMAGES, number])
        image = render_scene(present, image_rng, int(image_size), levels)
        image.save(image_dir / f"im{number}.jpg", **_JPEG_SETTINGS)
        (tags_dir / f"tags{number}.txt").write_text("".join(t + "\n" for t in rows.tags[i]),
                                                    encoding="utf-8")

    counts = Counter(t for tags in rows.tags for t in set(tags))
    common = sorted(((t, c) for t, c in counts.items() if c >= min_count), key=lambda tc: (-tc[1], tc[0]))
    save_text(image_dir / COMMON_TAGS_FILE, "".join(f"{t}\t{c}\n" for t, c in common))

    for j, concept in enumerate(MIRFLICKR_CONCEPTS):
        ids = np.flatnonzero(rows.labels[:, j]) + 1
        save_text(ann_dir / f"{concept}.txt", "".join(f"{n}\n" for n in ids))
    for concept, ids in rows.relevant.items():
        save_text(ann_dir / f"{concept}_r1.txt", "".join(f"{n}\n" for n in ids))
    save_text(ann_dir / "README.txt", _readme(n_images, seed, difficulty, min_count))
    return out_dir


def _readme(n_images: int, seed: int, difficulty: float, min_count: int) -> str:
    return (
        "Synthetic annotations written by cmhash.data.embedded (not the real MIRFlickr-25K).\n"
        f"images: {n_images}, seed: {seed}, difficulty: {difficulty}, common-tag threshold: {min_count}\n\n"
        "Layout as in mirflickr25k_annotations_v080: one file per concept, {concept}.txt, listing\n"
        "the 1-based numbers N of the images im{N}.jpg that show the concept, one per line;\n"
        "{concept}_r1.txt lists the subset where the concept is relevant (salient).\n"
    )


def _check_count(n_images: int) -> None:
    if int(n_images) < 1:
        raise ConfigError(f"embedded: n_images must be >= 1, got {n_images}")


def _zipf_choice(rng: np.random.Generator, vocab: tuple[str, ...], k: int) -> list[str]:
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    idx = rng.choice(len(vocab), size=min(k, len(vocab)), replace=False, p=weights / weights.sum())
    return [vocab[i] for i in idx]


def _sample_tags(row: np.ndarray, rng: np.random.Generator, levels: NoiseLevels) -> list[str]:
    """One image's tags: kept concepts' synonyms, absent concepts' tags, generic and rare tags."""
    if rng.random() < levels.untagged:
        return []
    present = [c for c, v in zip(MIRFLICKR_CONCEPTS, row) if v]
    absent = [c for c, v in zip(MIRFLICKR_CONCEPTS, row) if not v]
    tags: list[str] = []
    for concept in present:
        if rng.random() >= levels.tag_omission:
            k = 1 + int(rng.binomial(_TAGS_PER_CONCEPT_MAX_EXTRA, 0.35))
            tags += _zipf_choice(rng, _CONCEPT_TAGS[concept], k)
    for _ in range(int(rng.poisson(levels.distractor_tags))):
        if absent:
            tags += _zipf_choice(rng, _CONCEPT_TAGS[absent[int(rng.integers(len(absent)))]], 1)
    tags += _zipf_choice(rng, _GENERIC_TAGS, int(rng.poisson(levels.generic_tags)))
    for _ in range(int(rng.poisson(_RARE_TAGS_MEAN))):
        n_syl = int(rng.integers(3, 5))
        tags.append("".join(_RARE_SYLLABLES[int(s)] for s in rng.integers(len(_RARE_SYLLABLES), size=n_syl)))
    tags = list(dict.fromkeys(tags))
    return [tags[i] for i in rng.permutation(len(tags))]


__all__ = [
    "EmbeddedRows",
    "NoiseLevels",
    "default_min_tag_count",
    "generate_embedded",
    "render_scene",
    "sample_labels",
    "sample_rows",
]
