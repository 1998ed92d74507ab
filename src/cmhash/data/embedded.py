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
buildings, figures, vehicles, ...) drawn from the row's concepts, with clutter and noise.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw

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


# ---------------------------------------------------------------------------------------------
# Image rendering: one motif per concept, drawn back to front, then clutter and noise.
# ---------------------------------------------------------------------------------------------
_MOTIF_ORDER: tuple[str, ...] = (
    "sky", "sunset", "clouds", "water", "sea", "lake", "river", "plant_life", "tree", "structures",
    "flower", "transport", "car", "animals", "dog", "bird", "food", "people", "portrait",
)
# Concepts shown through another concept's motif: a man, woman or baby is drawn as a figure by
# the people motif (even when the people motif itself was omitted).
_PEOPLE_KINDS = frozenset({"male", "female", "baby"})
# Whole-scene concepts are never added as distractor motifs (they would repaint the scene).
_GLOBAL_CONCEPTS = frozenset({"indoor", "night", "sky", "sunset"})


class _Canvas:
    """A Pillow image, its drawing context and the seeded generator that jitters every motif."""

    def __init__(self, image: Image.Image, rng: np.random.Generator):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.rng = rng
        self.size = image.size[0]

    def u(self, lo: float, hi: float) -> float:
        """A uniform position or length, as a fraction [lo, hi) of the image side, in pixels."""
        return float(self.rng.uniform(lo, hi)) * self.size

    def colour(self, base: tuple[int, int, int], spread: int = 25) -> tuple[int, int, int]:
        jitter = self.rng.integers(-spread, spread + 1, size=3)
        return tuple(int(v) for v in np.clip(np.array(base) + jitter, 0, 255))

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]


def render_scene(concepts: set[str], rng: np.random.Generator, size: int,
                 levels: NoiseLevels) -> Image.Image:
    """Draw one ``size`` x ``size`` RGB scene showing ``concepts`` (some omitted, some absent
    ones added, plus clutter and pixel noise, as ``levels`` says)."""
    # iterate in the fixed concept order, never in set order (which varies with PYTHONHASHSEED)
    drawn = {c for c in MIRFLICKR_CONCEPTS if c in concepts and rng.random() >= levels.motif_omission}
    candidates = [c for c in MIRFLICKR_CONCEPTS if c not in concepts and c not in _GLOBAL_CONCEPTS]
    for _ in range(int(rng.poisson(levels.distractor_motifs)) if candidates else 0):
        drawn.add(candidates[int(rng.integers(len(candidates)))])

    horizon = float(rng.uniform(0.45, 0.7))
    canvas = _Canvas(Image.fromarray(_background(drawn, rng, size, horizon)), rng)
    for concept in _MOTIF_ORDER:
        if concept in drawn or (concept == "people" and drawn & _PEOPLE_KINDS):
            _MOTIFS[concept](canvas, drawn, horizon)
    for _ in range(int(rng.poisson(levels.clutter))):
        _clutter_shape(canvas)

    pixels = np.asarray(canvas.image, dtype=np.float32)
    if "night" in drawn:
        pixels *= float(rng.uniform(0.25, 0.4))
        pixels = _night_lights(pixels, rng)
    gain = 1.0 + rng.normal(0.0, levels.colour_jitter, size=3)
    pixels = pixels * gain.astype(np.float32)
    pixels += levels.pixel_noise * rng.standard_normal(size=pixels.shape, dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _gradient(top: tuple[int, ...], bottom: tuple[int, ...], height: int, width: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    column = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.broadcast_to(column, (height, width, 3))


def _background(drawn: set[str], rng: np.random.Generator, size: int, horizon: float) -> np.ndarray:
    """Indoor walls and floor, a sunset or blue sky over the ground, or a plain muted backdrop."""
    def jit(base, spread=20):
        return tuple(np.clip(np.array(base) + rng.integers(-spread, spread + 1, size=3), 0, 255))

    h = int(horizon * size)
    img = np.empty((size, size, 3), np.float32)
    if "indoor" in drawn:
        wall = jit(rng.choice([[214, 200, 170], [190, 190, 185], [225, 215, 200], [170, 150, 130]]))
        img[:] = _gradient(wall, tuple(0.8 * np.array(wall)), size, size)
        floor = int(rng.uniform(0.65, 0.8) * size)
        img[floor:] = jit([120, 85, 55])
        for _ in range(int(rng.integers(1, 4))):  # frames, windows, furniture
            x0, y0 = int(rng.uniform(0, 0.8) * size), int(rng.uniform(0.05, 0.6) * size)
            w, hh = int(rng.uniform(0.1, 0.3) * size), int(rng.uniform(0.1, 0.3) * size)
            img[y0:y0 + hh, x0:x0 + w] = jit(rng.choice([[90, 60, 40], [240, 240, 230], [60, 80, 110]]))
        return img.astype(np.uint8)
    if "sunset" in drawn:
        img[:h] = _gradient(jit([90, 60, 120]), jit([250, 140, 50]), h, size)
    elif "sky" in drawn:
        img[:h] = _gradient(jit([70, 130, 210]), jit([170, 205, 240]), h, size)
    else:
        base = jit(rng.choice([[150, 140, 120], [120, 120, 120], [170, 160, 150], [110, 100, 80]]), 30)
        img[:h] = _gradient(base, tuple(0.85 * np.array(base)), h, size)
    ground = jit([70, 120, 50] if "plant_life" in drawn else [130, 115, 90])
    img[h:] = _gradient(ground, tuple(0.7 * np.array(ground)), size - h, size)
    return img.astype(np.uint8)


def _sky(c: _Canvas, drawn: set[str], horizon: float) -> None:
    if "night" not in drawn and c.rng.random() < 0.4:  # a sun
        x, y, r = c.u(0.1, 0.9), c.u(0.05, 0.25), c.u(0.04, 0.08)
        c.draw.ellipse([x - r, y - r, x + r, y + r], fill=c.colour((255, 240, 150), 10))


def _sunset(c: _Canvas, drawn: set[str], horizon: float) -> None:
    x, r = c.u(0.2, 0.8), c.u(0.08, 0.16)
    y = horizon * c.size
    c.draw.pieslice([x - r, y - r, x + r, y + r], 180, 360, fill=c.colour((255, 120, 30), 15))


def _clouds(c: _Canvas, drawn: set[str], horizon: float) -> None:
    for _ in range(int(c.rng.integers(2, 6))):
        x, y = c.u(0.0, 1.0), c.u(0.03, max(0.06, horizon - 0.15))
        for _ in range(int(c.rng.integers(2, 5))):
            dx, dy, rx, ry = c.u(-0.08, 0.08), c.u(-0.03, 0.03), c.u(0.05, 0.12), c.u(0.03, 0.06)
            c.draw.ellipse([x + dx - rx, y + dy - ry, x + dx + rx, y + dy + ry],
                           fill=c.colour((240, 240, 245), 12))


def _waves(c: _Canvas, top: float, bottom: float, left: float, right: float) -> None:
    n = int(c.rng.integers(3, 8))
    amp, freq, phase = c.u(0.005, 0.015), float(c.rng.uniform(4, 10)), float(c.rng.uniform(0, 6.3))
    for k in range(n):
        y0 = top + (bottom - top) * (k + 0.5) / n
        xs = np.linspace(left, right, 16)
        pts = [(float(x), float(y0 + amp * math.sin(freq * x / c.size * 6.28 + phase + k))) for x in xs]
        c.draw.line(pts, fill=c.colour((170, 200, 235), 15), width=1)


def _water(c: _Canvas, drawn: set[str], horizon: float) -> None:
    if drawn & {"sea", "lake", "river"}:
        return  # the specific water motif draws it
    top = c.u(max(horizon, 0.6), 0.85)
    c.draw.rectangle([0, top, c.size, c.size], fill=c.colour((40, 100, 170), 20))
    _waves(c, top, c.size, 0, c.size)


def _sea(c: _Canvas, drawn: set[str], horizon: float) -> None:
    top = horizon * c.size
    c.draw.rectangle([0, top, c.size, c.size], fill=c.colour((20, 70, 150), 20))
    _waves(c, top + 2, c.size * 0.85, 0, c.size)
    c.draw.rectangle([0, c.u(0.85, 0.95), c.size, c.size], fill=c.colour((220, 200, 150), 15))  # beach


def _lake(c: _Canvas, drawn: set[str], horizon: float) -> None:
    cx, cy = c.u(0.3, 0.7), c.u(max(horizon, 0.6), 0.85)
    rx, ry = c.u(0.25, 0.45), c.u(0.08, 0.15)
    c.draw.ellipse([cx - rx - 3, cy - ry - 3, cx + rx + 3, cy + ry + 3], fill=c.colour((60, 110, 50), 15))
    c.draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=c.colour((50, 110, 160), 20))
    _waves(c, cy - ry / 2, cy + ry / 2, cx - rx / 2, cx + rx / 2)


def _river(c: _Canvas, drawn: set[str], horizon: float) -> None:
    top = horizon * c.size
    x_top, x_bottom = c.u(0.3, 0.7), c.u(0.2, 0.8)
    w_top, w_bottom = c.u(0.03, 0.06), c.u(0.15, 0.3)
    bend = c.u(-0.15, 0.15)
    mid_y, mid_x = (top + c.size) / 2, (x_top + x_bottom) / 2 + bend
    w_mid = (w_top + w_bottom) / 2
    left = [(x_top - w_top, top), (mid_x - w_mid, mid_y), (x_bottom - w_bottom, c.size)]
    right = [(x_bottom + w_bottom, c.size), (mid_x + w_mid, mid_y), (x_top + w_top, top)]
    c.draw.polygon(left + right, fill=c.colour((60, 120, 170), 20))


def _plant_life(c: _Canvas, drawn: set[str], horizon: float) -> None:
    top = horizon * c.size
    for _ in range(int(c.rng.integers(15, 40))):  # grass blades
        x, y = c.u(0, 1), c.u(max(horizon, 0.5), 1.0)
        c.draw.line([(x, y), (x + c.u(-0.02, 0.02), y - c.u(0.03, 0.08))],
                    fill=c.colour((50, 140, 40), 30), width=1)
    for _ in range(int(c.rng.integers(2, 6))):  # leafy bushes
        x, y, r = c.u(0, 1), top + c.u(-0.02, 0.2), c.u(0.03, 0.08)
        c.draw.ellipse([x - r, y - r * 0.7, x + r, y + r * 0.7], fill=c.colour((40, 110, 40), 25))


def _tree(c: _Canvas, drawn: set[str], horizon: float) -> None:
    for _ in range(int(c.rng.integers(1, 4))):
        x, base = c.u(0.1, 0.9), horizon * c.size + c.u(0.0, 0.1)
        height, trunk = c.u(0.25, 0.45), c.u(0.015, 0.03)
        c.draw.rectangle([x - trunk, base - height * 0.5, x + trunk, base], fill=c.colour((100, 70, 40), 15))
        crown_y, green = base - height * 0.6, c.pick(((40, 120, 40), (60, 140, 50), (190, 120, 40)))
        for _ in range(int(c.rng.integers(3, 7))):
            dx, dy, r = c.u(-0.07, 0.07), c.u(-0.07, 0.05), c.u(0.05, 0.1)
            c.draw.ellipse([x + dx - r, crown_y + dy - r, x + dx + r, crown_y + dy + r], fill=c.colour(green, 20))


def _structures(c: _Canvas, drawn: set[str], horizon: float) -> None:
    base = horizon * c.size + c.u(0.0, 0.05)
    for _ in range(int(c.rng.integers(1, 5))):
        x, w, h = c.u(-0.05, 0.85), c.u(0.1, 0.25), c.u(0.25, 0.6)
        wall = c.colour(c.pick(((150, 150, 155), (170, 140, 110), (120, 110, 100), (200, 195, 185))), 15)
        c.draw.rectangle([x, base - h, x + w, base], fill=wall)
        if c.rng.random() < 0.3:  # pitched roof / spire
            c.draw.polygon([(x, base - h), (x + w / 2, base - h - c.u(0.05, 0.15)), (x + w, base - h)],
                           fill=c.colour((120, 60, 50), 15))
        step = max(3.0, c.size * 0.05)
        window = c.colour((230, 220, 150) if "night" in drawn else (60, 70, 90), 10)
        y = base - h + step / 2
        while y < base - step:
            xx = x + step / 2
            while xx < x + w - step / 2:
                c.draw.rectangle([xx, y, xx + step * 0.4, y + step * 0.5], fill=window)
                xx += step
            y += step


def _flower(c: _Canvas, drawn: set[str], horizon: float) -> None:
    macro = c.rng.random() < 0.3
    for _ in range(1 if macro else int(c.rng.integers(3, 9))):
        x, y = c.u(0.1, 0.9), c.u(0.3, 0.95)
        r = c.u(0.12, 0.25) if macro else c.u(0.02, 0.05)
        petal = c.colour(c.pick(((220, 40, 60), (250, 210, 40), (240, 120, 180), (150, 70, 190), (250, 250, 250))), 20)
        if not macro:
            c.draw.line([(x, y), (x, y + r * 3)], fill=c.colour((40, 130, 40), 15), width=1)
        for k in range(5):
            a = k * 2 * math.pi / 5
            px, py = x + r * math.cos(a), y + r * math.sin(a)
            c.draw.ellipse([px - r * 0.6, py - r * 0.6, px + r * 0.6, py + r * 0.6], fill=petal)
        c.draw.ellipse([x - r * 0.4, y - r * 0.4, x + r * 0.4, y + r * 0.4], fill=c.colour((240, 200, 40), 15))


def _wheels(c: _Canvas, xs: list[float], y: float, r: float) -> None:
    for x in xs:
        c.draw.ellipse([x - r, y - r, x + r, y + r], fill=(20, 20, 20))
        c.draw.ellipse([x - r / 2, y - r / 2, x + r / 2, y + r / 2], fill=(160, 160, 160))


def _transport(c: _Canvas, drawn: set[str], horizon: float) -> None:
    if "car" in drawn:
        return  # the car motif stands for transport
    on_water = bool(drawn & {"sea", "lake", "river", "water"})
    kind = "boat" if on_water and c.rng.random() < 0.7 else c.pick(("train", "plane", "bike"))
    x, y = c.u(0.05, 0.5), c.u(max(horizon, 0.55), 0.85)
    if kind == "boat":
        w = c.u(0.2, 0.4)
        c.draw.polygon([(x, y), (x + w, y), (x + w * 0.85, y + w * 0.2), (x + w * 0.15, y + w * 0.2)],
                       fill=c.colour((120, 60, 30), 20))
        sail = [(x + w / 2, y - w * 0.8), (x + w / 2, y - 2), (x + w * 0.9, y - 2)]
        c.draw.polygon(sail, fill=c.colour((245, 245, 240), 10))
    elif kind == "train":
        w, h = c.u(0.4, 0.7), c.u(0.1, 0.16)
        c.draw.rectangle([x, y - h, x + w, y], fill=c.colour((180, 30, 30), 30))
        for k in range(int(w / (h * 0.9))):
            left = x + k * h * 0.9
            c.draw.rectangle([left + h * 0.1, y - h * 0.8, left + h * 0.6, y - h * 0.45], fill=(200, 220, 240))
        _wheels(c, [x + w * t for t in (0.1, 0.3, 0.7, 0.9)], y, h * 0.2)
    elif kind == "plane":
        px, py, w = c.u(0.2, 0.7), c.u(0.1, 0.35), c.u(0.2, 0.35)
        c.draw.ellipse([px, py - w * 0.08, px + w, py + w * 0.08], fill=c.colour((235, 235, 240), 10))
        c.draw.polygon([(px + w * 0.4, py), (px + w * 0.55, py), (px + w * 0.35, py + w * 0.45)], fill=(200, 200, 210))
    else:
        r = c.u(0.05, 0.08)
        _wheels(c, [x + r, x + 4 * r], y, r)
        c.draw.line([(x + r, y), (x + 2.5 * r, y - 1.5 * r), (x + 4 * r, y)], fill=c.colour((30, 60, 160), 30), width=2)


def _car(c: _Canvas, drawn: set[str], horizon: float) -> None:
    for _ in range(int(c.rng.integers(1, 3))):
        x, y, w = c.u(0.0, 0.6), c.u(max(horizon, 0.6), 0.92), c.u(0.25, 0.4)
        h = w * 0.3
        body = c.colour(c.pick(((200, 30, 30), (30, 60, 180), (230, 230, 230), (30, 30, 30), (240, 200, 30))), 25)
        c.draw.rectangle([x, y - h, x + w, y], fill=body)
        cabin = [(x + w * 0.2, y - h), (x + w * 0.3, y - h * 1.8), (x + w * 0.7, y - h * 1.8), (x + w * 0.8, y - h)]
        c.draw.polygon(cabin, fill=body)
        c.draw.rectangle([x + w * 0.33, y - h * 1.65, x + w * 0.67, y - h * 1.1], fill=(170, 200, 230))
        _wheels(c, [x + w * 0.2, x + w * 0.8], y, h * 0.45)


def _quadruped(c: _Canvas, colour: tuple[int, int, int], ears: str, x: float, y: float, w: float) -> None:
    h = w * 0.45
    for t in (0.15, 0.3, 0.7, 0.85):  # legs
        c.draw.line([(x + w * t, y), (x + w * t, y + h * 0.8)], fill=colour, width=max(1, int(w * 0.06)))
    c.draw.ellipse([x, y - h / 2, x + w, y + h / 2], fill=colour)
    hx, hy, hr = x + w * 1.0, y - h * 0.6, w * 0.2
    c.draw.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=colour)
    dark = tuple(int(v * 0.6) for v in colour)
    if ears == "pointed":
        c.draw.polygon([(hx - hr, hy - hr * 0.5), (hx - hr * 0.5, hy - hr * 1.8), (hx, hy - hr)], fill=dark)
        c.draw.polygon([(hx, hy - hr), (hx + hr * 0.5, hy - hr * 1.8), (hx + hr, hy - hr * 0.5)], fill=dark)
    else:  # floppy ears and a tail
        c.draw.ellipse([hx - hr * 1.2, hy - hr * 0.6, hx - hr * 0.5, hy + hr * 0.9], fill=dark)
        c.draw.line([(x, y - h * 0.2), (x - w * 0.2, y - h * 0.9)], fill=colour, width=max(1, int(w * 0.05)))
    c.draw.ellipse([hx + hr * 0.2, hy - hr * 0.3, hx + hr * 0.45, hy - hr * 0.05], fill=(10, 10, 10))


def _animals(c: _Canvas, drawn: set[str], horizon: float) -> None:
    if drawn & {"dog", "bird"}:
        return  # the specific animal stands for the class
    colour = c.colour(c.pick(((200, 130, 50), (120, 120, 120), (90, 60, 40), (230, 220, 200))), 25)
    _quadruped(c, colour, "pointed", c.u(0.1, 0.6), c.u(max(horizon, 0.55), 0.8), c.u(0.2, 0.35))


def _dog(c: _Canvas, drawn: set[str], horizon: float) -> None:
    colour = c.colour(c.pick(((150, 100, 50), (30, 25, 20), (220, 180, 110), (240, 240, 235))), 20)
    _quadruped(c, colour, "floppy", c.u(0.15, 0.55), c.u(max(horizon, 0.55), 0.8), c.u(0.25, 0.4))


def _bird(c: _Canvas, drawn: set[str], horizon: float) -> None:
    for _ in range(int(c.rng.integers(1, 4))):
        x, y, w = c.u(0.1, 0.85), c.u(0.05, 0.6), c.u(0.06, 0.14)
        colour = c.colour(c.pick(((60, 60, 70), (240, 240, 240), (140, 90, 50), (40, 90, 160))), 20)
        c.draw.ellipse([x - w / 2, y - w / 4, x + w / 2, y + w / 4], fill=colour)
        c.draw.polygon([(x - w * 0.2, y), (x, y - w * 0.8), (x + w * 0.2, y)], fill=colour)
        c.draw.polygon([(x + w / 2, y - 1), (x + w * 0.75, y + 1), (x + w / 2, y + 2)], fill=(240, 150, 30))


def _food(c: _Canvas, drawn: set[str], horizon: float) -> None:
    c.draw.rectangle([0, c.u(0.55, 0.7), c.size, c.size], fill=c.colour((140, 95, 60), 20))  # table
    for _ in range(int(c.rng.integers(1, 4))):
        x, y, r = c.u(0.15, 0.85), c.u(0.7, 0.9), c.u(0.1, 0.18)
        c.draw.ellipse([x - r, y - r * 0.6, x + r, y + r * 0.6], fill=c.colour((245, 245, 245), 8))
        for _ in range(int(c.rng.integers(2, 6))):
            fx, fy, fr = x + c.u(-0.06, 0.06), y + c.u(-0.03, 0.03), c.u(0.015, 0.04)
            c.draw.ellipse([fx - fr, fy - fr, fx + fr, fy + fr],
                           fill=c.colour(c.pick(((200, 40, 30), (60, 150, 40), (230, 190, 50), (140, 80, 40))), 20))


_SKIN = ((240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40))
_CLOTHES: Mapping[str, tuple[tuple[int, int, int], ...]] = MappingProxyType({
    "male": ((40, 60, 120), (60, 60, 60), (20, 20, 20)),
    "female": ((200, 40, 80), (230, 120, 170), (140, 40, 150)),
    "baby": ((250, 220, 230), (210, 230, 250), (250, 250, 200)),
    "person": ((90, 120, 90), (150, 120, 80), (100, 100, 140)),
})


def _figure(c: _Canvas, kind: str, x: float, ground: float, height: float) -> None:
    """A standing person: ``male`` (broad shoulders, short hair), ``female`` (long hair, dress),
    ``baby`` (small, big head, pastel) or ``person``."""
    skin = c.colour(c.pick(_SKIN), 10)
    head = height * (0.28 if kind == "baby" else 0.16)
    top = ground - height
    cloth = c.colour(c.pick(_CLOTHES.get(kind, _CLOTHES["person"])), 20)
    body_top = top + head * 2
    if kind == "female":
        hair = c.colour((80, 50, 30), 25)
        c.draw.ellipse([x - head * 1.2, top - head * 0.1, x + head * 1.2, top + head * 3.2], fill=hair)
        dress = [(x - head * 0.6, body_top), (x + head * 0.6, body_top),
                 (x + head * 1.6, ground), (x - head * 1.6, ground)]
        c.draw.polygon(dress, fill=cloth)
    else:
        shoulders = head * (1.6 if kind == "male" else 1.1)
        c.draw.rectangle([x - shoulders, body_top, x + shoulders, ground - height * 0.35], fill=cloth)
        legs = c.colour((50, 50, 70), 20)
        for side in (-1, 1):
            c.draw.line([(x + side * head * 0.5, ground - height * 0.35), (x + side * head * 0.6, ground)],
                        fill=legs, width=max(1, int(head * 0.6)))
    c.draw.ellipse([x - head, top, x + head, top + head * 2], fill=skin)
    if kind == "male":
        short_hair = c.colour((40, 30, 20), 20)
        c.draw.chord([x - head, top - head * 0.1, x + head, top + head * 1.2], 180, 360, fill=short_hair)


def _people_kinds(drawn: set[str]) -> list[str]:
    return [k for k in ("male", "female", "baby") if k in drawn] or ["person"]


def _people(c: _Canvas, drawn: set[str], horizon: float) -> None:
    if "portrait" in drawn:
        return  # the portrait motif shows the person
    kinds = _people_kinds(drawn)
    n = int(c.rng.integers(1, 4)) + (len(kinds) > 1)
    for k in range(n):
        height = c.u(0.35, 0.6)
        _figure(c, kinds[k % len(kinds)], c.u(0.1, 0.9), c.u(max(horizon, 0.7), 0.98), height)


def _portrait(c: _Canvas, drawn: set[str], horizon: float) -> None:
    kinds = _people_kinds(drawn)
    kind = kinds[int(c.rng.integers(len(kinds)))]
    x, y, r = c.u(0.4, 0.6), c.u(0.35, 0.5), c.u(0.18, 0.26)
    cloth = c.colour(_CLOTHES.get(kind, _CLOTHES["person"])[0], 25)
    c.draw.ellipse([x - r * 2.2, y + r * 1.1, x + r * 2.2, y + r * 4], fill=cloth)  # shoulders
    if kind == "female":
        c.draw.ellipse([x - r * 1.3, y - r * 1.2, x + r * 1.3, y + r * 2.0], fill=c.colour((80, 50, 30), 25))
    c.draw.ellipse([x - r, y - r * 1.2, x + r, y + r * 1.2], fill=c.colour(c.pick(_SKIN), 10))
    if kind == "male":
        c.draw.chord([x - r, y - r * 1.3, x + r, y + r * 0.2], 180, 360, fill=c.colour((40, 30, 20), 20))
    for side in (-1, 1):
        eye = x + side * r * 0.4
        c.draw.ellipse([eye - r * 0.12, y - r * 0.2, eye + r * 0.12, y], fill=(30, 30, 30))
    mouth = [x - r * 0.4, y + r * 0.2, x + r * 0.4, y + r * 0.7]
    c.draw.arc(mouth, 20, 160, fill=(150, 40, 40), width=max(1, int(r * 0.1)))


def _clutter_shape(c: _Canvas) -> None:
    """A random rectangle, ellipse or line in a random colour (visual clutter)."""
    x, y, w, h = c.u(-0.1, 1.0), c.u(-0.1, 1.0), c.u(0.02, 0.25), c.u(0.02, 0.25)
    fill = tuple(int(v) for v in c.rng.integers(0, 256, size=3))
    shape = int(c.rng.integers(3))
    if shape == 0:
        c.draw.rectangle([x, y, x + w, y + h], fill=fill)
    elif shape == 1:
        c.draw.ellipse([x, y, x + w, y + h], fill=fill)
    else:
        c.draw.line([(x, y), (x + w, y + h)], fill=fill, width=int(c.rng.integers(1, 4)))


def _night_lights(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scattered bright points (stars, street and window lights) on the darkened scene."""
    size = pixels.shape[0]
    n = int(rng.integers(10, 40))
    ys, xs = rng.integers(0, size, size=n), rng.integers(0, size, size=n)
    pixels[ys, xs] = rng.uniform(200, 255, size=(n, 1)) * np.array([1.0, 0.95, 0.7])
    return pixels


_MOTIFS: Mapping[str, Callable[[_Canvas, set[str], float], None]] = MappingProxyType({
    "sky": _sky, "sunset": _sunset, "clouds": _clouds, "water": _water, "sea": _sea, "lake": _lake,
    "river": _river, "plant_life": _plant_life, "tree": _tree, "structures": _structures,
    "flower": _flower, "transport": _transport, "car": _car, "animals": _animals, "dog": _dog,
    "bird": _bird, "food": _food, "people": _people, "portrait": _portrait,
})


__all__ = [
    "EmbeddedRows",
    "NoiseLevels",
    "default_min_tag_count",
    "generate_embedded",
    "render_scene",
    "sample_labels",
    "sample_rows",
]
