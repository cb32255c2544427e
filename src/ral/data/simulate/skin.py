"""The simulated single-label set: 7 dermoscopy-like lesion classes with ISIC 2018 proportions.

Grayscale images: skin with texture, vignetting and hairs, one lesion per image whose
shape, tone and texture depend on the class (see docs/dataset.md). Visibility ``v`` in
[0, 1] scales the class-specific features, so low-visibility melanomas look like nevi.
Written in the ISIC 2018 task 3 ground-truth layout with JPEG images under ``images/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ral.data.classes import ISIC2018_CLASSES, ISIC2018_TRAIN_COUNTS
from ral.data.simulate.render import F32, _col, _soft, ellipse, gauss
from ral.data.simulate.single_label import SingleLabelSet

SPLIT_CODES = {"train": 11, "val": 12, "test": 13}
BATCH = 512


def render_lesions(targets: np.ndarray, visibility: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (B, S, S) lesion images for class indices ``targets`` (B,) (ISIC2018_CLASSES order)."""
    b = targets.size
    lin = np.linspace(-1.0, 1.0, size, dtype=F32)
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    x = np.broadcast_to(gx, (b, size, size))
    y = np.broadcast_to(gy, (b, size, size))
    v = _col(visibility)
    # skin: smooth tone variation, dermoscope vignette, a few hairs
    tone = _col(rng.uniform(0.62, 0.8, b))
    phase = _col(rng.uniform(0, 6.28, b))
    img = tone + 0.04 * np.cos(3.0 * x + phase) * np.cos(2.5 * y - phase)
    img = img - 0.45 * _soft(np.sqrt(x**2 + y**2) - 1.05, 8.0)
    cx, cy = _col(rng.uniform(-0.15, 0.15, b)), _col(rng.uniform(-0.15, 0.15, b))
    theta = np.arctan2(y - cy, x - cx)
    dist = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    radius = _col(rng.uniform(0.25, 0.42, b))
    lobes = _col(rng.integers(3, 8, b).astype(F32))
    wobble = np.zeros_like(radius)
    darkness = _col(rng.uniform(0.28, 0.4, b))
    texture = np.zeros((b, size, size), dtype=F32)
    name = np.array(ISIC2018_CLASSES)[targets]

    mel = _col(name == "MEL")
    wobble = wobble + mel * (0.05 + 0.3 * v)
    radius = radius + mel * 0.08
    blotch = gauss(x, y, cx + 0.12, cy - 0.08, 0.12, 0.1)
    regression = gauss(x, y, cx - 0.15, cy + 0.1, 0.1, 0.1)
    texture += mel * v * (0.22 * blotch - 0.25 * regression)

    bkl = _col(name == "BKL")
    darkness = darkness - bkl * 0.1
    ridges = np.cos(_col(rng.uniform(28, 36, b)) * (x * np.cos(phase) + y * np.sin(phase)))
    texture += bkl * v * 0.14 * ridges

    bcc = _col(name == "BCC")
    darkness = darkness - bcc * 0.2
    vessels = np.zeros_like(x)
    for _ in range(4):
        a = _col(rng.uniform(0, 6.28, b))
        bend = _col(rng.uniform(-2.0, 2.0, b))
        along = (x - cx) * np.cos(a) + (y - cy) * np.sin(a)
        across = -(x - cx) * np.sin(a) + (y - cy) * np.cos(a) - bend * along**2
        vessels = np.maximum(
            vessels, np.exp(-0.5 * (across / 0.02) ** 2) * _soft(along, 20.0) * _soft(0.3 - along, 20.0)
        )
    texture += bcc * v * 0.35 * vessels

    akiec = _col(name == "AKIEC")
    darkness = darkness - akiec * 0.16
    scale = np.clip(np.cos(47.0 * x + 3 * phase) * np.cos(41.0 * y - phase) * np.cos(23.0 * (x + y)), 0, 1)
    texture -= akiec * v * 0.35 * scale  # white scale

    vasc = _col(name == "VASC")
    lacunae = np.zeros_like(x)
    for _ in range(6):
        lx = cx + _col(rng.uniform(-0.2, 0.2, b))
        ly = cy + _col(rng.uniform(-0.2, 0.2, b))
        lacunae = np.maximum(lacunae, ellipse(x, y, lx, ly, 0.07, 0.07, sharp=12.0))
    texture += vasc * (0.15 + 0.3 * v) * lacunae
    darkness = darkness - vasc * 0.2

    df = _col(name == "DF")
    scar = gauss(x, y, cx, cy, 0.1, 0.09)
    texture -= df * v * 0.35 * scar
    darkness = darkness - df * 0.1

    edge = dist / (radius * (1.0 + wobble * np.cos(lobes * theta + phase)))
    sharp = 6.0 + 10.0 * (1.0 - mel) * (1.0 - df)
    lesion = _soft(1.0 - edge, sharp)
    lesion = np.maximum(lesion, vasc * lacunae)
    img = img - (darkness + texture) * lesion
    for _ in range(3):  # hairs
        on = _col(rng.random(b) < 0.3)
        a, c0 = _col(rng.uniform(0, 3.14, b)), _col(rng.uniform(-0.8, 0.8, b))
        bend = _col(rng.uniform(-0.5, 0.5, b))
        across = x * np.sin(a) - y * np.cos(a) - c0 - bend * (x * np.cos(a) + y * np.sin(a)) ** 2
        img = img - on * 0.3 * np.exp(-0.5 * (across / 0.012) ** 2)
    img = img + _col(rng.uniform(0.015, 0.04, b)) * rng.standard_normal(img.shape, dtype=F32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def isic_table(names: list[str], targets: np.ndarray) -> pd.DataFrame:
    """The ISIC 2018 ground-truth layout: ``image`` and one ``0.0`` / ``1.0`` column per class."""
    onehot = np.eye(len(ISIC2018_CLASSES), dtype=np.float64)[targets]
    frame = pd.DataFrame({"image": names})
    for j, c in enumerate(ISIC2018_CLASSES):
        frame[c] = [f"{val:.1f}" for val in onehot[:, j]]
    return frame


SKIN = SingleLabelSet(
    majority="NV",
    classes=ISIC2018_CLASSES,
    published_counts=ISIC2018_TRAIN_COUNTS,
    split_codes=SPLIT_CODES,
    render=render_lesions,
    image_name=lambda index: f"ISIC_{index:07d}",
    suffix=".jpg",
    save_options={"format": "JPEG", "quality": 95},
    table=isic_table,
    layout="ISIC 2018 task 3 ground truth: image, MEL, NV, BCC, AKIEC, BKL, DF, VASC",
    batch=BATCH,
)
