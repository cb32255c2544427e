"""The simulated fundus set: 5 diabetic-retinopathy grades with APTOS 2019 proportions.

RGB images of a retina: the orange-red fundus disc, an optic disc, a macula and vessels, with
the lesions of the International Clinical DR scale accumulating with the grade (1: a few
microaneurysms; 2: more, with haemorrhages and hard exudates; 3: many haemorrhages in every
quadrant and cotton-wool spots; 4: new vessels at the disc). Visibility ``v`` in [0, 1]
scales the lesion counts and contrast, so low-visibility images of neighbouring grades look
alike, as graders find. Written in the APTOS 2019 layout (``id_code, diagnosis``) with PNG
images under ``images/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ral.data.classes import APTOS_CLASSES, APTOS_TRAIN_COUNTS
from ral.data.simulate.render import F32, _col, _soft, gauss
from ral.data.simulate.single_label import SingleLabelSet

SPLIT_CODES = {"train": 21, "val": 22, "test": 23}
BATCH = 256
# lesion counts at visibility 1 by grade (microaneurysms, haemorrhages, exudates, cotton-wool spots)
LESIONS = {
    "microaneurysm": (0, 6, 10, 14, 14),
    "haemorrhage": (0, 0, 6, 18, 14),
    "exudate": (0, 0, 5, 8, 8),
    "cotton_wool": (0, 0, 0, 4, 3),
}


def _spots(x, y, rng, counts, v, radius, inside) -> np.ndarray:
    """Sum of ``counts`` (B,) gaussian spots per image at random places inside the retina."""
    b = x.shape[0]
    out = np.zeros_like(x)
    for k in range(int(counts.max()) if counts.size else 0):
        on = _col((counts > k).astype(F32)) * v
        r = np.sqrt(rng.uniform(0.0, 0.8, b))
        a = rng.uniform(0.0, 6.283, b)
        cx, cy = _col(r * np.cos(a)), _col(r * np.sin(a))
        size = _col(radius * rng.uniform(0.7, 1.4, b))
        out += on * gauss(x, y, cx, cy, size, size)
    return out * inside


def render_fundus(grades: np.ndarray, visibility: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (B, S, S, 3) fundus photographs for DR grades ``grades`` (B,) in 0..4."""
    b = grades.size
    lin = np.linspace(-1.0, 1.0, size, dtype=F32)
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    x = np.broadcast_to(gx, (b, size, size)).copy()
    y = np.broadcast_to(gy, (b, size, size)).copy()
    v = _col(visibility)
    eye = _col(rng.choice([-1.0, 1.0], b))  # left or right eye: optic disc on either side
    dist = np.sqrt(x**2 + y**2)
    inside = _soft(0.95 - dist, 30.0)
    shade = _col(rng.uniform(0.75, 1.0, b)) * (1.0 - 0.35 * dist**2)  # illumination falls off
    disc_x, disc_y = 0.42 * eye, _col(rng.uniform(-0.08, 0.08, b))
    disc = gauss(x, y, disc_x, disc_y, 0.08, 0.09)
    macula = gauss(x, y, -0.05 * eye, disc_y + 0.03, 0.14, 0.12)
    # vessels: arcades leaving the disc above and below, branching towards the macula
    vessels = np.zeros_like(x)
    for side in (-1.0, 1.0):
        for spread, width in ((0.55, 0.018), (0.3, 0.012)):
            u = (disc_x - x) * eye  # distance from the disc towards the macula
            curve_y = disc_y + side * spread * np.sqrt(np.clip(u, 0.0, None)) * 0.9
            vessels += np.exp(-0.5 * ((y - curve_y) / width) ** 2) * _soft(u, 20.0) * _soft(1.2 - u, 10.0)
    vessels = np.clip(vessels, 0.0, 1.0)
    g = grades
    lesion = {name: np.asarray(table)[g] * (0.3 + 0.7 * visibility) for name, table in LESIONS.items()}
    counts = {name: rng.poisson(np.maximum(value, 0.0)) for name, value in lesion.items()}
    red_dots = _spots(x, y, rng, counts["microaneurysm"], v, 0.02, inside)
    blots = _spots(x, y, rng, counts["haemorrhage"], v, 0.035, inside)
    exudates = _spots(x, y, rng, counts["exudate"], v, 0.018, inside)
    wool = _spots(x, y, rng, counts["cotton_wool"], v, 0.05, inside)
    # grade 4: a tuft of fine new vessels on the disc
    new_vessels = np.zeros_like(x)
    proliferative = _col((g == 4).astype(F32)) * v
    for k in range(6):
        a = k * 1.05 + _col(rng.uniform(0, 1.0, b))
        along = (x - disc_x) * np.cos(a) + (y - disc_y) * np.sin(a)
        across = -(x - disc_x) * np.sin(a) + (y - disc_y) * np.cos(a) - 0.03 * np.sin(40.0 * along)
        new_vessels += np.exp(-0.5 * (across / 0.008) ** 2) * _soft(along, 40.0) * _soft(0.2 - along, 25.0)
    new_vessels = np.clip(new_vessels, 0.0, 1.0) * proliferative
    dark = 0.5 * vessels + 0.35 * macula + 0.9 * np.clip(red_dots + blots, 0.0, 1.0) + 0.6 * new_vessels
    bright = 0.6 * disc + 0.7 * np.clip(exudates, 0.0, 1.0) + 0.45 * np.clip(wool, 0.0, 1.0)
    base = shade * inside
    red = base * (0.78 - 0.45 * dark) + 0.25 * bright * inside
    green = base * (0.36 - 0.3 * dark) + 0.45 * bright * inside
    blue = base * (0.12 - 0.1 * dark) + 0.2 * (disc + wool) * inside
    img = np.stack([red, green, blue], axis=-1)
    img = img + _col(rng.uniform(0.01, 0.03, b))[..., None] * rng.standard_normal(img.shape, dtype=F32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


FUNDUS = SingleLabelSet(
    classes=APTOS_CLASSES,
    published_counts=APTOS_TRAIN_COUNTS,
    majority="No DR",
    split_codes=SPLIT_CODES,
    render=render_fundus,
    image_name=lambda index: f"{(index + 1) * 2654435761 % 16**12:012x}",  # APTOS-like 12-digit hex ids
    suffix=".png",
    save_options={"format": "PNG", "compress_level": 1},
    table=lambda names, grades: pd.DataFrame({"id_code": names, "diagnosis": grades.astype(np.int64)}),
    layout="APTOS 2019: id_code, diagnosis (grade 0-4)",
    batch=BATCH,
)
