"""Seconds per image of VGG19 fc7 extraction (cmhash.features.extract_vgg19_fc7) at several crop sizes.

Generates random JPEGs (500 x 375, MIRFlickr's typical size) in a temporary folder, builds the
network once per size to time construction separately, then times the full public call and
reports (call - construction) / images. Random weights are used (the ImageNet file is not
needed; the arithmetic is the same).

    .venv/bin/python benchmarks/bench_vgg19.py --sizes 224 112 64 --n-images 32 --device cpu
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cmhash.features.image import build_vgg19, extract_vgg19_fc7


def make_images(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (500, 375)) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        path = folder / f"bench{k:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 112, 64])
    parser.add_argument("--n-images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for this run (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="VGG19 with random weights")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.n_images)
        for size in args.sizes:
            t0 = time.perf_counter()
            build_vgg19("none", seed=0)
            t_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            feats, meta = extract_vgg19_fc7(paths, weights="none", image_size=size, batch_size=args.batch_size,
                                            device=args.device, progress=False)
            t_call = time.perf_counter() - t0
            assert feats.shape == (args.n_images, 4096)
            rows.append((size, meta["device"], t_build, t_call, (t_call - t_build) / args.n_images))

    print(f"VGG19 fc7, {args.n_images} images of 500x375, batch {args.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'size':>5} {'device':>7} {'build s':>8} {'call s':>8} {'s/image':>9} {'images/s':>9}")
    for size, device, t_build, t_call, per in rows:
        print(f"{size:>5} {device:>7} {t_build:>8.2f} {t_call:>8.2f} {per:>9.4f} {1 / per:>9.2f}")


if __name__ == "__main__":
    main()
