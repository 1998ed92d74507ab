"""Image drawing of the ``embedded`` dataset (:mod:`cmhash.data.embedded`): one simple scene per
image (sky bands, waves, trees, buildings, figures, vehicles, ...) drawn from the row's
concepts, one motif per concept back to front, some motifs omitted and some of absent concepts
added, then clutter shapes, night darkening, a per-channel colour gain and pixel noise, as the
image rates (:class:`ImageNoise`) of a ``difficulty`` say.

Every draw comes from the generator the caller passes (one stream per image), and shapes are
drawn in a fixed order, never in set order, so the same stream gives the same pixels.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw

from cmhash.data.mirflickr import MIRFLICKR_CONCEPTS

__all__ = ["ImageNoise", "render_scene"]


class ImageNoise(Protocol):
    """The image corruption rates a scene is drawn with: the image half of
    :class:`cmhash.data.embedded.NoiseLevels` (which the generator passes)."""

    motif_omission: float
    distractor_motifs: float
    clutter: float
    pixel_noise: float
    colour_jitter: float


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
                 levels: ImageNoise) -> Image.Image:
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
