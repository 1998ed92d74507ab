"""Text features: binary tag bag-of-words and Doc2Vec document vectors.

METHODS.md ("Shared by NRCH and SCBCH", Inputs): MIRFlickr text is a 1,386-d tag
bag-of-words, NUS-WIDE 1,000-d and IAPR TC-12 2,912-d BoW, MS-COCO a 300-d Doc2Vec. The
published MIRFlickr matrix (``YAll`` in mirflickr25k-yall.mat) holds only 0 and 1, so the
bag-of-words here is binary presence, not counts.

Doc2Vec (Le & Mikolov 2014) is gensim's ``Doc2Vec`` trained on the dataset's own texts, one
document per row, tagged by row index. It is made reproducible by one worker thread (no
thread-scheduling jitter) and a fixed ``seed``. gensim's documentation also requires a fixed
``PYTHONHASHSEED`` for runs to repeat across interpreter launches, and this module insists on
it. Measured with gensim 4.4: training gave bit-identical vectors under PYTHONHASHSEED 0, 1,
123 and unset (its initial vectors come from ``numpy.random.default_rng(seed)``; only
``infer_vector`` still seeds from Python's ``hash``), so the check guards other gensim versions
and any later use of ``infer_vector`` rather than today's training.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any

import gensim
import numpy as np
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.doc2vec import Doc2Vec, TaggedDocument
from tqdm.auto import tqdm

from cmhash.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _check_documents(texts: Sequence[Sequence[str]]) -> None:
    for i, doc in enumerate(texts):
        if isinstance(doc, str):
            raise DataError(f"texts[{i}]: expected a list of tokens, got the string {doc[:40]!r}; split it into words first")


def bag_of_words(texts: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Binary bag-of-words: ``out[i, j] = 1.0`` iff ``vocabulary[j]`` occurs in ``texts[i]``.

    float32, N x V. Tokens match exactly (case-sensitive) and tokens outside the vocabulary are
    ignored, so a row may be all zero (dataset modules filter such rows where the published
    protocol does). Repeated tokens count once, as in MIRFlickr's published ``YAll``.
    """
    index: dict[str, int] = {}
    for j, word in enumerate(vocabulary):
        if word in index:
            raise DataError(f"vocabulary: {word!r} appears at positions {index[word]} and {j}; words must be unique")
        index[word] = j
    _check_documents(texts)
    out = np.zeros((len(texts), len(index)), dtype=np.float32)
    for i, doc in enumerate(texts):
        cols = [index[token] for token in doc if token in index]
        out[i, cols] = 1.0
    return out


def check_hashseed(require: bool = True) -> str | None:
    """Return ``PYTHONHASHSEED`` if it is a fixed integer; otherwise raise (``require``) or warn.

    Only the value the interpreter was started with counts: assigning ``os.environ`` inside a
    running process does not change string hashing.
    """
    value = os.environ.get("PYTHONHASHSEED")
    if value is not None and value.strip().isdigit():
        return value.strip()
    state = "not set" if value is None else f"set to {value!r}"
    message = (f"PYTHONHASHSEED is {state}, so gensim's Doc2Vec is not reproducible across runs. "
               f"Start Python with a fixed value, e.g. `PYTHONHASHSEED=0 python ...` (the Snakemake rule does this); "
               f"setting it inside a running interpreter has no effect")
    if require:
        raise ConfigError(message + ", or pass require_hashseed=False for interactive use")
    warnings.warn(message + "; continuing because require_hashseed=False", stacklevel=3)
    return None


class _EpochProgress(CallbackAny2Vec):
    """Advance a tqdm bar and log once per training epoch."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        self.bar = tqdm(total=epochs, desc="Doc2Vec", unit="epoch", disable=not enabled)
        self.epoch = 0

    def on_epoch_end(self, model: Doc2Vec) -> None:
        self.epoch += 1
        self.bar.update(1)
        log.debug("Doc2Vec epoch %d/%d done", self.epoch, model.epochs)

    def close(self) -> None:
        self.bar.close()


def doc2vec(
    texts: Sequence[Sequence[str]],
    *,
    vector_size: int = 300,
    epochs: int = 20,
    min_count: int = 1,
    window: int = 5,
    dm: int = 1,
    negative: int = 5,
    seed: int = 0,
    progress: bool = True,
    require_hashseed: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Doc2Vec vectors (N x ``vector_size`` float32, row i = document i) trained on ``texts``, and the settings.

    gensim ``Doc2Vec(vector_size, window, min_count, dm, negative, seed, epochs, workers=1)``:
    ``dm=1`` is PV-DM, ``dm=0`` PV-DBOW. Each row is tagged with its index and its vector is
    ``model.dv[i]`` after training. A document with no tokens, or with none kept after
    ``min_count`` pruning (its vector would stay at its random start), raises :class:`DataError`
    naming the row. ``PYTHONHASHSEED`` must be fixed (see :func:`check_hashseed`) unless
    ``require_hashseed=False``, which only warns.
    """
    for name, value, low in (("vector_size", vector_size, 1), ("epochs", epochs, 1), ("min_count", min_count, 1),
                             ("window", window, 1), ("negative", negative, 0)):
        if not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}: {value!r} must be an integer >= {low}")
    if dm not in (0, 1):
        raise ConfigError(f"dm: {dm!r} must be 1 (PV-DM) or 0 (PV-DBOW)")
    hashseed = check_hashseed(require_hashseed)
    _check_documents(texts)
    if not texts:
        raise DataError("texts: no documents given")
    empty = [i for i, doc in enumerate(texts) if len(doc) == 0]
    if empty:
        raise DataError(f"texts: {len(empty)} empty document(s), first at row(s) {empty[:10]}; "
                        "remove them or give them tokens before Doc2Vec")

    corpus = [TaggedDocument(list(doc), [i]) for i, doc in enumerate(texts)]
    model = Doc2Vec(vector_size=vector_size, window=window, min_count=min_count, dm=dm, negative=negative,
                    seed=seed, workers=1, epochs=epochs)
    model.build_vocab(corpus)
    kept = model.wv.key_to_index
    pruned = [i for i, doc in enumerate(texts) if not any(token in kept for token in doc)]
    if pruned:
        raise DataError(f"texts: {len(pruned)} document(s) have no word occurring >= min_count={min_count} times, "
                        f"first at row(s) {pruned[:10]}; lower min_count or drop those rows")
    callback = _EpochProgress(epochs, progress)
    try:
        model.train(corpus, total_examples=model.corpus_count, epochs=model.epochs, callbacks=[callback])
    finally:
        callback.close()
    rows = [model.dv.get_index(i) for i in range(len(corpus))]
    vectors = np.asarray(model.dv.vectors[rows], dtype=np.float32)

    meta = {
        "extractor": "doc2vec",
        "library": f"gensim {gensim.__version__}",
        "vector_size": vector_size,
        "epochs": epochs,
        "min_count": min_count,
        "window": window,
        "dm": dm,
        "negative": negative,
        "alpha": model.alpha,
        "min_alpha": model.min_alpha,
        "sample": model.sample,
        "seed": seed,
        "workers": 1,
        "pythonhashseed": hashseed,
        "n_documents": len(corpus),
        "vocabulary_size": len(kept),
        "corpus_tokens": int(sum(len(doc) for doc in texts)),
    }
    return vectors, meta
