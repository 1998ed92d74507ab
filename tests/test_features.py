"""Tests for cmhash.features: VGG19 fc7 image features, binary tag BoW and Doc2Vec."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import vgg19

import cmhash.features.image as image_mod
from cmhash.errors import ConfigError, DataError
from cmhash.features import (
    bag_of_words,
    doc2vec,
    extract_vgg19_fc7,
    imagenet_transform,
    vgg19_weights_path,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


# --------------------------------------------------------------------------- image fixtures

@pytest.fixture(scope="module")
def torch_home(tmp_path_factory) -> Iterator[Path]:
    """A TORCH_HOME whose hub/checkpoints/ holds a seeded random VGG19 state dict under the
    ImageNet weights' file name, where torchvision's loader looks for it."""
    home = tmp_path_factory.mktemp("torch_home")
    ckpt = home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = vgg19(weights=None)
    state_path = ckpt / "vgg19-dcbb9e9d.pth"
    torch.save(model.state_dict(), state_path)
    yield home
    state_path.unlink()  # 548 MB: do not leave it in pytest's retained temporary folders


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory) -> list[str]:
    """Four small random JPEGs of different shapes (landscape, portrait, square, smaller than the crop)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    paths = []
    for k, (h, w) in enumerate([(40, 52), (64, 48), (80, 80), (30, 70)]):
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        path = folder / f"img{k}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(str(path))
    return paths


def _hand_preprocess(path: str, size: int) -> torch.Tensor:
    """ImageNet preprocessing written out by hand: shorter side -> round(size*256/224) with PIL
    bilinear, centre crop size x size, scale to [0, 1], normalise with the ImageNet mean/std."""
    resize = round(size * 256 / 224)
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        new_w, new_h = resize, int(resize * h / w)
    else:
        new_w, new_h = int(resize * w / h), resize
    img = img.resize((new_w, new_h), Image.BILINEAR)
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
    arr = np.asarray(img, dtype=np.float64)[top:top + size, left:left + size] / 255.0
    arr = (arr - MEAN) / STD
    return torch.from_numpy(arr.transpose(2, 0, 1).astype(np.float32))


def _manual_fc7(state_path: Path, paths: list[str], size: int) -> np.ndarray:
    model = vgg19(weights=None, init_weights=False)
    model.load_state_dict(torch.load(state_path, weights_only=True))
    model.eval()
    rows = []
    with torch.no_grad():
        for p in paths:
            x = _hand_preprocess(p, size)[None]
            x = torch.flatten(model.avgpool(model.features(x)), 1)
            c = model.classifier  # Linear, ReLU, Dropout (identity in eval), Linear, ReLU
            rows.append(torch.relu(c[3](torch.relu(c[0](x)))).numpy()[0])
    return np.stack(rows)


# --------------------------------------------------------------------------- image tests

def test_transform_is_the_weights_transform_and_normalises_a_flat_image():
    t224 = imagenet_transform(224)
    assert t224.crop_size == [224] and t224.resize_size == [256]
    colour = (200, 100, 50)
    out = imagenet_transform(32)(Image.new("RGB", (50, 40), colour))
    assert out.shape == (3, 32, 32)
    expected = (np.array(colour) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(out.numpy().reshape(3, -1), np.repeat(expected[:, None], 32 * 32, axis=1), atol=1e-5)


def test_imagenet_path_reads_torch_home_and_equals_manual_fc7(torch_home, image_paths, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    state_path = torch_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert vgg19_weights_path() == state_path
    rng_before = torch.random.get_rng_state()
    # the file is not the published one: its SHA-256 cannot start with dcbb9e9d, and we say so
    with pytest.warns(UserWarning, match="published prefix dcbb9e9d"):
        feats, meta = extract_vgg19_fc7(image_paths, weights="imagenet", image_size=32, batch_size=3,
                                        device="cpu", progress=False)
    assert torch.equal(torch.random.get_rng_state(), rng_before), "global torch RNG state was disturbed"
    assert feats.shape == (4, 4096) and feats.dtype == np.float32
    assert (feats >= 0).all() and (feats > 0).mean() > 0.05  # post-ReLU, and not trivially zero
    expected = _manual_fc7(state_path, image_paths, 32)
    assert np.abs(feats - expected).max() <= 1e-4 * np.abs(expected).max()
    assert not np.allclose(feats[0], feats[1])

    sha = hashlib.sha256(state_path.read_bytes()).hexdigest()
    assert meta["weights"] == "imagenet"
    assert meta["weights_file"] == str(state_path)
    assert meta["weights_sha256"] == sha and meta["weights_sha256_matches_published"] is False
    assert meta["image_size"] == 32 and meta["resize_size"] == 37
    assert meta["torchvision_version"] and meta["device"] == "cpu"

    with pytest.warns(UserWarning, match="published prefix"):
        again, _ = extract_vgg19_fc7(image_paths, weights="imagenet", image_size=32, batch_size=3,
                                     device="cpu", progress=False)
    assert np.array_equal(feats, again)


def test_missing_weights_without_network_raise_dataerror_saying_where(tmp_path, image_paths, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(DataError, match=r"hub/checkpoints/vgg19-dcbb9e9d\.pth.*could not be downloaded.*TORCH_HOME"):
        extract_vgg19_fc7(image_paths[:1], weights="imagenet", image_size=32, device="cpu", progress=False)


def test_corrupt_weights_file_raises_dataerror(tmp_path, image_paths, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    bad = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match=r"vgg19-dcbb9e9d\.pth.*delete it"):
        extract_vgg19_fc7(image_paths[:1], weights="imagenet", image_size=32, device="cpu", progress=False)


def test_random_weights_warn_are_seeded_and_recorded(image_paths):
    kw = {"weights": "none", "image_size": 32, "batch_size": 4, "device": "cpu", "progress": False}
    with pytest.warns(UserWarning, match="not ImageNet features"):
        a, meta = extract_vgg19_fc7(image_paths[:2], seed=3, **kw)
    with pytest.warns(UserWarning):
        b, _ = extract_vgg19_fc7(image_paths[:2], seed=3, **kw)
    with pytest.warns(UserWarning):
        c, _ = extract_vgg19_fc7(image_paths[:2], seed=4, **kw)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert meta["weights"] == "none" and meta["seed"] == 3 and meta["weights_sha256"] is None


def test_unreadable_image_fails_fast_naming_the_file(tmp_path, image_paths, monkeypatch):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")

    def must_not_build(*args, **kwargs):
        raise AssertionError("the network was built before the images were checked")

    monkeypatch.setattr(image_mod, "build_vgg19", must_not_build)
    with pytest.raises(DataError, match="broken.jpg"):
        extract_vgg19_fc7([*image_paths, str(bad)], weights="none", image_size=32, device="cpu", progress=False)
    with pytest.raises(DataError, match="absent.jpg.*not found"):
        extract_vgg19_fc7([str(tmp_path / "absent.jpg")], weights="none", image_size=32, device="cpu", progress=False)


def test_truncated_image_raises_dataerror_naming_it(tmp_path, image_paths):
    data = Path(image_paths[2]).read_bytes()
    cut = tmp_path / "truncated.jpg"
    cut.write_bytes(data[: len(data) // 2])  # header intact, scan data cut
    with pytest.warns(UserWarning), pytest.raises(DataError, match="truncated.jpg"):
        extract_vgg19_fc7([image_paths[0], str(cut)], weights="none", image_size=32, batch_size=1,
                          device="cpu", progress=False)


def test_bad_settings_raise_configerror(image_paths):
    with pytest.raises(ConfigError, match="image_size"):
        extract_vgg19_fc7(image_paths, weights="none", image_size=16, progress=False)
    with pytest.raises(ConfigError, match="weights"):
        extract_vgg19_fc7(image_paths, weights="imagenet21k", image_size=32, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        extract_vgg19_fc7(image_paths, weights="none", image_size=32, batch_size=0, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            extract_vgg19_fc7(image_paths, weights="none", image_size=32, device="cuda", progress=False)


# --------------------------------------------------------------------------- bag of words

def test_bag_of_words_is_binary_presence():
    texts = [["a", "b", "a"], ["c"], [], ["z", "b", "b"]]
    out = bag_of_words(texts, ["b", "c", "a"])
    expected = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_bag_of_words_rejects_bad_input():
    with pytest.raises(DataError, match="'b' appears at positions 0 and 2"):
        bag_of_words([["a"]], ["b", "a", "b"])
    with pytest.raises(DataError, match=r"texts\[1\].*string"):
        bag_of_words([["a"], "a b"], ["a", "b"])


def test_bag_of_words_reproduces_mirflickr_yall():
    path = DATA / "mirflickr25k" / "mirflickr25k-yall.mat"
    if not path.is_file():
        pytest.skip(f"../shared/data not present: {path}")
    import scipy.io

    yall = scipy.io.loadmat(path)["YAll"]
    assert yall.shape == (20015, 1386)
    assert set(np.unique(yall)) == {0, 1}  # the published tag BoW is binary presence
    vocab = [f"tag{j}" for j in range(yall.shape[1])]
    rows = yall[:2000]
    texts = [[vocab[j] for j in np.flatnonzero(r)] * 2 for r in rows]  # repeats must not count twice
    np.testing.assert_array_equal(bag_of_words(texts, vocab), rows.astype(np.float32))


# --------------------------------------------------------------------------- Doc2Vec

def _two_topic_corpus(n_per_topic: int = 40, length: int = 10, seed: int = 0) -> tuple[list[list[str]], np.ndarray]:
    rng = np.random.default_rng(seed)
    animals = ["cat", "dog", "horse", "cow", "sheep", "goat", "pig", "duck", "goose", "hen", "mouse", "rabbit"]
    money = ["bank", "loan", "stock", "bond", "price", "market", "trade", "cash", "credit", "debt", "fund", "tax"]
    texts, topic = [], []
    for k, words in enumerate([animals, money]):
        for _ in range(n_per_topic):
            texts.append(list(rng.choice(words, size=length)))
            topic.append(k)
    return texts, np.array(topic)


def test_doc2vec_is_bit_identical_across_fresh_interpreters(tmp_path):
    script = textwrap.dedent("""
        import sys, numpy as np
        from cmhash.features.text import doc2vec
        rng = np.random.default_rng(5)
        vocab = [f"w{i}" for i in range(60)]
        texts = [list(rng.choice(vocab, size=int(rng.integers(3, 12)))) for _ in range(120)]
        vectors, meta = doc2vec(texts, vector_size=24, epochs=5, seed=int(sys.argv[2]), progress=False)
        np.save(sys.argv[1], vectors)
    """)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    outs = []
    for k in range(2):
        out = tmp_path / f"v{k}.npy"
        subprocess.run([sys.executable, "-c", script, str(out), "0"], env=env, check=True,
                       capture_output=True, timeout=120)
        outs.append(np.load(out))
    assert outs[0].shape == (120, 24) and outs[0].dtype == np.float32
    assert np.array_equal(outs[0], outs[1])


def test_doc2vec_seed_changes_the_vectors(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    texts, _ = _two_topic_corpus(10, 5)
    a, _ = doc2vec(texts, vector_size=8, epochs=2, seed=0, progress=False)
    b, _ = doc2vec(texts, vector_size=8, epochs=2, seed=0, progress=False)
    c, _ = doc2vec(texts, vector_size=8, epochs=2, seed=1, progress=False)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_doc2vec_learns_two_topics(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    texts, topic = _two_topic_corpus()
    vectors, meta = doc2vec(texts, vector_size=16, epochs=100, seed=0, progress=False)  # tiny corpus: many epochs
    assert vectors.shape == (80, 16) and vectors.dtype == np.float32
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    same = topic[:, None] == topic[None, :]
    nearest_same = same[np.arange(len(topic)), sim.argmax(1)].mean()
    np.fill_diagonal(sim, np.nan)
    within, across = np.nanmean(np.where(same, sim, np.nan)), np.nanmean(np.where(~same, sim, np.nan))
    assert nearest_same >= 0.95
    assert within > across + 0.15
    assert meta["vector_size"] == 16 and meta["epochs"] == 100 and meta["seed"] == 0
    assert meta["workers"] == 1 and meta["pythonhashseed"] == "0" and meta["vocabulary_size"] == 24
    assert meta["n_documents"] == 80 and meta["corpus_tokens"] == 800


def test_doc2vec_requires_a_fixed_hashseed(monkeypatch):
    texts, _ = _two_topic_corpus(5, 4)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    with pytest.raises(ConfigError, match=r"PYTHONHASHSEED is not set.*PYTHONHASHSEED=0.*require_hashseed=False"):
        doc2vec(texts, vector_size=4, epochs=1, progress=False)
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    with pytest.raises(ConfigError, match="set to 'random'"):
        doc2vec(texts, vector_size=4, epochs=1, progress=False)
    with pytest.warns(UserWarning, match="require_hashseed=False"):
        vectors, meta = doc2vec(texts, vector_size=4, epochs=1, progress=False, require_hashseed=False)
    assert vectors.shape == (10, 4) and meta["pythonhashseed"] is None


def test_doc2vec_rejects_empty_and_fully_pruned_documents(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    with pytest.raises(DataError, match=r"first at row\(s\) \[2\]"):
        doc2vec([["a", "b"], ["b"], [], ["a"]], vector_size=4, epochs=1, progress=False)
    with pytest.raises(DataError, match=r"min_count=2.*\[1\]"):
        doc2vec([["a", "b"], ["rare"], ["a", "b"]], vector_size=4, epochs=1, min_count=2, progress=False)
    with pytest.raises(ConfigError, match="dm"):
        doc2vec([["a"]], vector_size=4, dm=2, progress=False)
