"""Feature extraction: VGG19 fc7 image features (torchvision) and text features (tag BoW, Doc2Vec).

Names are resolved lazily (PEP 562), so text-only callers do not pay for importing torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cmhash.features.image import (
        FC7_DIM,
        extract_vgg19_fc7,
        imagenet_transform,
        vgg19_weights_path,
    )
    from cmhash.features.text import bag_of_words, check_hashseed, doc2vec

_HOME = {
    "FC7_DIM": "image",
    "extract_vgg19_fc7": "image",
    "imagenet_transform": "image",
    "vgg19_weights_path": "image",
    "bag_of_words": "text",
    "check_hashseed": "text",
    "doc2vec": "text",
}

__all__ = [
    "FC7_DIM",
    "bag_of_words",
    "check_hashseed",
    "doc2vec",
    "extract_vgg19_fc7",
    "imagenet_transform",
    "vgg19_weights_path",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"cmhash.features.{_HOME[name]}"), name)
    raise AttributeError(f"module 'cmhash.features' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
