"""VGG19 fc7 image features, extracted with torchvision.

NRCH and SCBCH take "image 4096-d VGG19 fc7" features (METHODS.md, "Shared by NRCH and
SCBCH", Inputs). fc7 is the output of the second fully connected layer of VGG19 (Simonyan &
Zisserman 2015, configuration E) after its ReLU. In torchvision's layout that is

    model.features -> model.avgpool -> flatten -> model.classifier[:5]

where ``classifier[:5]`` = Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU; the
model is in ``eval()`` mode, so dropout is the identity. Images go through the ImageNet
preprocessing bundled with torchvision's weights (resize the shorter side to 256, centre crop
224, scale to [0, 1], normalise with the ImageNet mean and standard deviation); for another
``image_size`` the same transform is used with crop ``image_size`` and resize
``round(image_size * 256 / 224)``.

``weights="imagenet"`` goes through torchvision's own loader, which reads
``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` and downloads it only when it is absent.
torchvision checks the file's SHA-256 prefix (``dcbb9e9d``) only when it downloads it, never
for a file already in place, so this module hashes the file itself, records the digest in the
metadata and warns when it is not the published file.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from PIL import Image, UnidentifiedImageError
from torchvision.models import VGG, VGG19_Weights, vgg19
from tqdm.auto import tqdm

from cmhash.errors import ConfigError, DataError
from cmhash.io import file_sha256

FC7_DIM = 4096
"""Width of VGG19's fc7 layer."""

IMAGENET_WEIGHTS = VGG19_Weights.IMAGENET1K_V1
"""The torchvision ImageNet weights the published VGG19 features correspond to."""

MIN_IMAGE_SIZE = 32
"""Smallest crop VGG19 accepts (five 2x2 max-pools), as torchvision's weight metadata states."""

_IMAGE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


def vgg19_weights_path() -> Path:
    """Where torchvision reads the ImageNet VGG19 weights: ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``
    (``torch.hub.get_dir()`` decides the folder; it follows ``$TORCH_HOME`` at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(IMAGENET_WEIGHTS.url).path)


def published_sha256_prefix() -> str:
    """The SHA-256 prefix torchvision encodes in the weights' file name (``dcbb9e9d``)."""
    stem = Path(urlparse(IMAGENET_WEIGHTS.url).path).stem
    return stem.rsplit("-", 1)[1]


def resize_size_for(image_size: int) -> int:
    """The shorter-side resize paired with a centre crop of ``image_size`` (the standard 256/224 ratio)."""
    return round(image_size * 256 / 224)


def imagenet_transform(image_size: int = 224) -> Callable[[Image.Image], torch.Tensor]:
    """ImageNet evaluation preprocessing for a PIL RGB image -> float tensor (3, image_size, image_size).

    At 224 this is exactly ``VGG19_Weights.IMAGENET1K_V1.transforms()`` (resize 256, crop 224,
    bilinear with antialiasing, ImageNet mean/std); at other sizes it is the same transform class
    with ``crop_size=image_size`` and ``resize_size=round(image_size * 256 / 224)``.
    """
    _check_image_size(image_size)
    if image_size == 224:
        return IMAGENET_WEIGHTS.transforms()
    return IMAGENET_WEIGHTS.transforms(crop_size=image_size, resize_size=resize_size_for(image_size))


def vgg19_fc7(model: VGG, images: torch.Tensor) -> torch.Tensor:
    """fc7 activations: features -> avgpool -> flatten -> classifier[:5] (…, Linear, ReLU). ``model`` must be in eval mode."""
    x = model.features(images)
    x = model.avgpool(x)
    x = torch.flatten(x, 1)
    return model.classifier[:5](x)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; any other value is parsed by ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device: {device!r} is not a torch device (use 'auto', 'cpu' or 'cuda[:N]')") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    return resolved


def build_vgg19(weights: Literal["imagenet", "none"], *, seed: int = 0) -> tuple[VGG, dict[str, Any]]:
    """Build torchvision's VGG19 in eval mode on the CPU, with its provenance.

    ``"imagenet"``: ``torchvision.models.vgg19(weights=VGG19_Weights.IMAGENET1K_V1)``, reading the
    file at :func:`vgg19_weights_path` (downloading it if absent); a missing file that cannot be
    downloaded, or an unreadable one, raises :class:`DataError` saying where to put it.
    ``"none"``: random initialisation drawn after ``torch.manual_seed(seed)``. Either way the
    global torch RNG state is left as it was (construction runs inside ``torch.random.fork_rng``).
    """
    if weights not in ("imagenet", "none"):
        raise ConfigError(f"weights: {weights!r} is not one of 'imagenet', 'none'")
    meta: dict[str, Any] = {"weights": weights}
    with torch.random.fork_rng(devices=[]):
        if weights == "none":
            torch.manual_seed(seed)
            model = vgg19(weights=None)
            meta.update(seed=seed, weights_file=None, weights_sha256=None)
        else:
            model, file_meta = _load_imagenet_vgg19()
            meta.update(file_meta)
    model.eval()
    return model, meta


def _load_imagenet_vgg19() -> tuple[VGG, dict[str, Any]]:
    path = vgg19_weights_path()
    where = (f"download {IMAGENET_WEIGHTS.url} and place it at {path} "
             f"(the folder follows $TORCH_HOME: <TORCH_HOME>/hub/checkpoints/)")
    try:
        model = vgg19(weights=IMAGENET_WEIGHTS, progress=False)
    except OSError as exc:  # URLError, HTTPError, missing or unreadable file
        if not path.is_file():
            raise DataError(f"{path}: VGG19 ImageNet weights not found and could not be downloaded ({exc}); {where}") from exc
        raise DataError(f"{path}: cannot read the VGG19 ImageNet weights ({exc}); delete it and {where}") from exc
    except Exception as exc:  # truncated/corrupt pickle, wrong keys or shapes, hash mismatch on download
        raise DataError(f"{path}: not a usable VGG19 ImageNet state dict ({type(exc).__name__}: {exc}); "
                        f"delete it and {where}") from exc
    digest = file_sha256(path)
    matches = digest.startswith(published_sha256_prefix())
    if not matches:
        warnings.warn(f"{path}: SHA-256 {digest[:16]}... does not start with the published prefix "
                      f"{published_sha256_prefix()}; these are not torchvision's ImageNet VGG19 weights, so the "
                      f"features will not match published VGG19 fc7 features", stacklevel=3)
    return model, {"weights_url": IMAGENET_WEIGHTS.url, "weights_file": str(path),
                   "weights_sha256": digest, "weights_sha256_matches_published": matches}




def _check_image_size(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"image_size: {image_size!r} must be an integer >= {MIN_IMAGE_SIZE} (VGG19's minimum input)")


def _load_rgb(path: str) -> Image.Image:
    """Decode one image fully as RGB, or raise DataError naming the file."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: image file not found") from exc
    except _IMAGE_ERRORS as exc:
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc}); replace or remove the file") from exc


def _check_openable(paths: Sequence[str]) -> None:
    """Cheap pass over every file's header before the expensive loop, so a bad file fails fast."""
    for path in paths:
        try:
            with Image.open(path) as im:
                im.verify()
        except FileNotFoundError as exc:
            raise DataError(f"{path}: image file not found") from exc
        except _IMAGE_ERRORS as exc:
            raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc}); replace or remove the file") from exc


def extract_vgg19_fc7(
    image_paths: list[str],
    *,
    weights: Literal["imagenet", "none"],
    image_size: int = 224,
    batch_size: int = 32,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """VGG19 fc7 features (N x 4096 float32, rows in ``image_paths`` order) and their provenance.

    Each image is decoded with PIL (``convert("RGB")``), preprocessed by
    :func:`imagenet_transform`, and passed through :func:`vgg19_fc7` in eval mode under
    ``torch.inference_mode``. ``weights="none"`` gives a seeded random network (for tests and
    timing only) and warns that the features are not ImageNet features. ``seed`` is used only
    then. Every file's header is checked before any network work; an unreadable file raises
    :class:`DataError` naming it. The torch thread count and global RNG state are left to the
    caller. ``batch_size`` affects speed and memory only.
    """
    _check_image_size(image_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size: {batch_size!r} must be a positive integer")
    paths = [os.fspath(p) for p in image_paths]
    if not paths:
        raise DataError("image_paths: no images given")
    target = resolve_device(device)
    _check_openable(paths)

    model, meta = build_vgg19(weights, seed=seed)
    if weights == "none":
        warnings.warn(f"VGG19 with random weights (seed {seed}): these are not ImageNet features; "
                      "use weights='imagenet' for real experiments", stacklevel=2)
    model.to(target)
    transform = imagenet_transform(image_size)

    out = np.empty((len(paths), FC7_DIM), dtype=np.float32)
    starts = range(0, len(paths), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="VGG19 fc7", unit="batch", disable=not progress):
            batch = torch.stack([transform(_load_rgb(p)) for p in paths[start:start + batch_size]])
            out[start:start + len(batch)] = vgg19_fc7(model, batch.to(target)).float().cpu().numpy()

    meta.update(
        extractor="vgg19_fc7",
        layer="classifier[:5] (fc7, after ReLU)",
        image_size=image_size,
        resize_size=resize_size_for(image_size),
        preprocessing="VGG19_Weights.IMAGENET1K_V1.transforms (PIL RGB, bilinear antialiased resize, "
                      "centre crop, ImageNet mean/std)",
        mean=list(transform.mean),
        std=list(transform.std),
        n_images=len(paths),
        dim=FC7_DIM,
        device=str(target),
        batch_size=batch_size,
        torch_version=torch.__version__,
        torchvision_version=torchvision.__version__,
    )
    return out, meta
