"""The findings of the simulated chest radiographs: anatomy modifiers and painters, and :func:`render_batch`.

Anatomy modifiers edit (B,) parameters before drawing; painters edit ``canvas.img`` afterwards
(coordinates and intensities as in :mod:`ral.data.simulate.render`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ral.data.classes import CXRLT_CLASSES
from ral.data.simulate.render import (
    F32,
    Canvas,
    _col,
    _soft,
    boundary,
    curve,
    draw_anatomy,
    ellipse,
    finish,
    gauss,
    lung_field,
)

# --- findings -----------------------------------------------------------------------------------
# Anatomy modifiers edit (B,) parameters before drawing; painters edit canvas.img afterwards.
# Each gets the row indices ``i`` (k,) of the positive images and their visibility ``v`` (k,)
# in [0, 1], and must not touch other rows.

Modifier = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray, np.random.Generator], None]
Painter = Callable[[Canvas, np.ndarray, np.ndarray, np.random.Generator], None]


def _cardiomegaly(p, i, v, rng):
    p["heart_rx"][i] += 0.02 + 0.09 * v
    p["heart_ry"][i] += 0.01 + 0.03 * v


def _enlarged_cm(p, i, v, rng):
    p["med_w"][i] += 0.015 + 0.05 * v


def _emphysema(p, i, v, rng):
    p["lung_ry"][i] += 0.015 + 0.05 * v
    p["lung_cy"][i] += 0.01 + 0.03 * v
    p["heart_rx"][i] -= 0.02 * v


def _atelectasis_volume(p, i, v, rng):
    p["lung_ry"][i] -= 0.03 * v


MODIFIERS: dict[str, Modifier] = {
    "Cardiomegaly": _cardiomegaly,
    "Enlarged Cardiomediastinum": _enlarged_cm,
    "Emphysema": _emphysema,
    "Atelectasis": _atelectasis_volume,
}


def _sub(c: Canvas, i: np.ndarray):
    """(k, S, S) views of the coordinates and masks of rows i, and (k, 1, 1) parameters."""
    p = {k: v[i] for k, v in c.p.items()}
    return c.x[i], c.y[i], p


def _side(rng, k: int) -> np.ndarray:
    return _col(rng.choice([-1.0, 1.0], size=k))


def _u(rng, k: int, lo: float, hi: float) -> np.ndarray:
    return _col(rng.uniform(lo, hi, k))


def _point_in_lung(rng, p, k: int, side: np.ndarray, ylo: float = -0.6, yhi: float = 0.6):
    """A random point inside one lung field (fractions of the lung radii)."""
    cx = side * p["lung_cx"] + _u(rng, k, -0.55, 0.55) * p["lung_rx"]
    cy = p["lung_cy"] + _u(rng, k, ylo, yhi) * p["lung_ry"]
    return cx, cy


def _lung_of(c: Canvas, i: np.ndarray, side: np.ndarray) -> np.ndarray:
    return np.where(side < 0, c.lung_r[i], c.lung_l[i])


def _pleural_effusion(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    both = _col(rng.random(k) < 0.35)
    side = _side(rng, k)
    height = (0.04 + 0.30 * v[:, None, None]) * p["lung_ry"]
    out = np.zeros_like(x)
    for s in (-1.0, 1.0):
        on = np.maximum(both, (side == s).astype(F32))
        lat = np.clip((s * x - p["lung_cx"]) / p["lung_rx"], -1, 1)
        level = p["lung_cy"] + p["lung_ry"] - height - 0.6 * height * np.clip(lat, 0, 1)  # meniscus
        fluid = _soft(y - level, 25.0) * (c.lung_r[i] if s < 0 else c.lung_l[i])
        out = np.maximum(out, fluid * on)
    c.img[i] += (0.58 - c.img[i]) * out * (0.2 + 0.5 * v[:, None, None])


def _atelectasis(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    side = _side(rng, k)
    cx, cy = _point_in_lung(rng, p, k, side, 0.25, 0.7)
    slope = _u(rng, k, -0.3, 0.3)
    band = curve(y, x, cy + slope * (x - cx), cx - 0.22, cx + 0.22, 0.03)
    c.img[i] += (0.04 + 0.16 * v[:, None, None]) * band * _lung_of(c, i, side)


def _blob_opacity(c, i, v, rng, *, r_lo, r_hi, amp, sharp, ylo=-0.6, yhi=0.6, n_blobs=1, spread=0.0, both_lungs=False):
    """``n_blobs`` round opacities: one lung, clustered within ``spread``, or spread over both lungs."""
    x, y, p = _sub(c, i)
    k = i.size
    total = np.zeros_like(x)
    cx0, cy0 = _point_in_lung(rng, p, k, _side(rng, k), ylo, yhi)
    for _ in range(n_blobs):
        if both_lungs:
            cx, cy = _point_in_lung(rng, p, k, _side(rng, k), ylo, yhi)
        else:
            cx, cy = cx0 + _u(rng, k, -spread, spread), cy0 + _u(rng, k, -spread, spread)
        r = _u(rng, k, r_lo, r_hi)
        total = np.maximum(total, ellipse(x, y, cx, cy, r, r * _u(rng, k, 0.8, 1.25), sharp=sharp))
    c.img[i] += amp * (0.35 + 0.65 * v[:, None, None]) * total * c.lungs[i]


def _consolidation(c, i, v, rng):
    _blob_opacity(c, i, v, rng, r_lo=0.12, r_hi=0.2, amp=0.25, sharp=6.0, ylo=-0.2, yhi=0.6)


def _pneumonia(c, i, v, rng):
    _blob_opacity(c, i, v, rng, r_lo=0.05, r_hi=0.09, amp=0.2, sharp=3.0, ylo=0.0, yhi=0.6, n_blobs=5, spread=0.13)


def _infiltration(c, i, v, rng):
    _blob_opacity(c, i, v, rng, r_lo=0.03, r_hi=0.06, amp=0.16, sharp=3.0, n_blobs=8, both_lungs=True)


def _lung_opacity(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    cx, cy = _point_in_lung(rng, p, k, _side(rng, k), -0.5, 0.5)
    haze = gauss(x, y, cx, cy, _u(rng, k, 0.12, 0.22), _u(rng, k, 0.15, 0.3))
    c.img[i] += (0.02 + 0.1 * v[:, None, None]) * haze * c.lungs[i]


def _edema(c, i, v, rng):
    x, y, p = _sub(c, i)
    hy = p["lung_cy"] + 0.1
    bat = gauss(np.abs(x), y, p["lung_cx"] * 0.55, hy, 0.18, 0.28)
    # Kerley B lines: short horizontal lines at the lateral bases
    kerley = np.clip(np.cos(60.0 * y) - 0.7, 0, 1) / 0.3 * _soft(np.abs(x) - p["lung_cx"] - 0.1, 20.0)
    kerley = kerley * _soft(y - p["lung_cy"] - 0.15, 15.0)
    c.img[i] += ((0.01 + 0.08 * v[:, None, None]) * bat + 0.04 * v[:, None, None] * kerley) * c.lungs[i]


def _emphysema_paint(c, i, v, rng):
    c.img[i] -= (0.02 + 0.04 * v[:, None, None]) * c.lungs[i] + 0.4 * v[:, None, None] * c.markings[i] * c.lungs[i]


def _fibrosis(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    f = _u(rng, k, 22.0, 28.0)
    net = np.abs(np.cos(f * x + 3.0 * y)) * np.abs(np.cos(f * y - 2.0 * x))
    net = np.clip(net - 0.55, 0, 1) / 0.45
    zone = _soft(y - p["lung_cy"], 6.0) * _soft(np.abs(x) - p["lung_cx"] * 0.7, 8.0)
    c.img[i] += (0.15 + 0.25 * v[:, None, None]) * net * zone * c.lungs[i]


def _fracture(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    side = _side(rng, k)
    cx = side * (p["lung_cx"] + p["lung_rx"] * _u(rng, k, 0.55, 0.95))
    cy = p["lung_cy"] + p["lung_ry"] * _u(rng, k, -0.6, 0.3)
    callus = ellipse(x, y, cx, cy, _u(rng, k, 0.045, 0.06), 0.04, sharp=5.0)
    gap = curve(x, y, cx + 0.3 * (y - cy), cy - 0.05, cy + 0.05, 0.012)
    amp = 0.15 + 0.25 * v[:, None, None]
    c.img[i] += amp * callus - 0.6 * amp * gap


def _hernia(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    cx = p["heart_cx"] - 0.05 + _u(rng, k, -0.04, 0.04)
    cy = p["heart_cy"] + _u(rng, k, -0.02, 0.06)
    r = _u(rng, k, 0.09, 0.13)
    sac = ellipse(x, y, cx, cy, r, r * 0.9, sharp=10.0)
    gas = sac * _soft(cy - 0.2 * r - y, 40.0)  # air-fluid level: dark gas cap
    amp = 0.18 + 0.25 * v[:, None, None]
    c.img[i] += 0.35 * amp * sac - amp * gas


def _star(x, y, cx, cy, r, lobes, phase, sharp):
    theta = np.arctan2(y - cy, x - cx)
    rr = r * (1.0 + 0.35 * np.cos(lobes * theta + phase))
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    return _soft(1.0 - d / rr, sharp)


def _lung_lesion(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    cx, cy = _point_in_lung(rng, p, k, _side(rng, k), -0.6, 0.4)
    lesion = _star(x, y, cx, cy, _u(rng, k, 0.06, 0.09), 5.0, _u(rng, k, 0, 6.28), 5.0)
    c.img[i] += (0.1 + 0.22 * v[:, None, None]) * lesion * c.lungs[i]


def _mass(c, i, v, rng):
    _blob_opacity(c, i, v, rng, r_lo=0.1, r_hi=0.16, amp=0.3, sharp=14.0, ylo=-0.6, yhi=0.4)


def _nodule(c, i, v, rng):
    _blob_opacity(c, i, v, rng, r_lo=0.035, r_hi=0.055, amp=0.32, sharp=14.0, ylo=-0.7, yhi=0.5)


def _pleural_other(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    side = _side(rng, k)
    cx = side * (p["lung_cx"] + p["lung_rx"] * 0.92)
    cy = p["lung_cy"] + p["lung_ry"] * _u(rng, k, -0.4, 0.4)
    plaque = ellipse(x, y, cx, cy, 0.1, _u(rng, k, 0.14, 0.22), sharp=8.0)
    c.img[i] += (0.2 + 0.25 * v[:, None, None]) * plaque * _soft(_lung_of(c, i, side) - 0.02, 30.0)


def _pleural_thickening(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    side = _side(rng, k)
    lung = _lung_of(c, i, side)
    # apical cap: the top of the lung field minus the same field shifted down
    shifted = lung_field(x, y - _u(rng, k, 0.07, 0.11), side * p["lung_cx"], p["lung_cy"], p["lung_rx"], p["lung_ry"])
    cap = np.clip(lung - shifted, 0, 1) * _soft(p["lung_cy"] - y, 10.0)
    c.img[i] += (0.2 + 0.25 * v[:, None, None]) * cap


def _pneumomediastinum(c, i, v, rng):
    x, y, p = _sub(c, i)
    med = np.maximum(c.heart[i], _soft(p["med_w"] - np.abs(x - 0.02), 30.0) * _soft(p["heart_cy"] - y, 8.0))
    stripe = boundary(med) * _soft(p["heart_cy"] + 0.05 - y, 10.0) * _soft(y + 0.95, 10.0)
    c.img[i] -= (0.08 + 0.25 * v[:, None, None]) * stripe


def _pneumoperitoneum(c, i, v, rng):
    x, y, p = _sub(c, i)
    dome_y = p["lung_cy"] + p["lung_ry"] * 0.98
    cx = -p["lung_cx"]
    # free air under the right hemidiaphragm, separated from the lung base by the diaphragm
    outer = ellipse(x, y, cx, dome_y + 0.08, p["lung_rx"] * 1.05, 0.1, sharp=12.0)
    inner = ellipse(x, y, cx, dome_y + 0.17, p["lung_rx"] * 1.05, 0.1, sharp=12.0)
    crescent = np.clip(outer - inner, 0, 1) * _soft(y - dome_y - 0.04, 20.0)
    c.img[i] -= (0.25 + 0.3 * v[:, None, None]) * crescent


def _pneumothorax(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    side = _side(rng, k)
    lung = _lung_of(c, i, side)
    shrink = 1.0 - (0.12 + 0.3 * v[:, None, None])
    collapsed = ellipse(
        x,
        y,
        side * p["lung_cx"] - side * 0.2 * (1 - shrink),
        p["lung_cy"] + 0.3 * (1 - shrink),
        p["lung_rx"] * shrink,
        p["lung_ry"] * shrink,
        sharp=9.0,
        power=2.4,
    )
    gas = lung * (1.0 - collapsed)
    amp = 0.35 + 0.65 * v[:, None, None]
    c.img[i] -= gas * (c.markings[i] + 0.04) * amp
    c.img[i] += 0.1 * amp * boundary(collapsed) * lung


def _subcutaneous_emphysema(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    side = _side(rng, k)
    wall = _soft(side * x - p["lung_cx"] - p["lung_rx"] * 1.02, 25.0) * _soft(0.95 - side * x, 25.0)
    wall = wall * _soft(0.6 - y, 8.0)
    f = _u(rng, k, 28.0, 36.0)
    streaks = np.clip(np.cos(f * (y + 0.6 * side * x)) * np.cos(0.5 * f * x) - 0.3, 0, 1)
    c.img[i] -= (0.15 + 0.3 * v[:, None, None]) * wall * streaks


def _support_devices(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    metal = np.zeros_like(x)
    pick = rng.random((k, 4)) < np.array([0.55, 0.45, 0.5, 0.2])
    pick[~pick.any(axis=1), 0] = True
    # endotracheal tube
    ett = curve(x, y, 0.0 + 0.02 * y, -1.0, -0.35 + _u(rng, k, -0.1, 0.1), 0.018)
    # nasogastric tube: down the midline, below the diaphragm, curving to the left
    ngt_x = 0.03 + 0.35 * np.clip(y - 0.45, 0, None) ** 2 / 0.1
    ngt = curve(x, y, ngt_x, -1.0, 0.85, 0.012)
    # central venous line from one clavicle to the superior vena cava
    s = _side(rng, k)
    cvl = curve(x * s, y, 0.5 - 0.44 * (y + 0.62) / 0.52, -0.62, -0.1, 0.014)
    # pacemaker: box in the upper chest and a lead to the heart
    px, py = 0.55 * s, -0.72
    box = ellipse(x, y, px, py, 0.09, 0.06, sharp=20.0, power=4.0)
    lead = curve(x * s, y, 0.55 - 0.45 * (y + 0.72) / 1.0, -0.72, 0.3, 0.012)
    for j, part in enumerate((ett, ngt, cvl, box + 0.7 * lead)):
        metal = np.maximum(metal, part * _col(pick[:, j]))
    c.img[i] += (0.06 + 0.2 * v[:, None, None]) * np.clip(metal, 0, 1)


def _tortuous_aorta(c, i, v, rng):
    x, y, p = _sub(c, i)
    amp = 0.02 + 0.08 * v[:, None, None]
    contour_x = 0.1 + amp * np.sin(np.pi * (y + 0.55) / 0.85) + 0.04
    aorta = curve(x, y, contour_x, -0.55, 0.3, 0.035)
    c.img[i] += (0.05 + 0.1 * v[:, None, None]) * aorta * (1.0 - c.heart[i])


def _calcification_aorta(c, i, v, rng):
    x, y, p = _sub(c, i)
    k = i.size
    cx, cy, r = 0.14, -0.45 + _u(rng, k, -0.04, 0.04), 0.085
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    arc = np.exp(-0.5 * ((d - r) / 0.018) ** 2) * _soft(cy + 0.02 - y, 20.0) * _soft(x - cx + 0.03, 20.0)
    c.img[i] += (0.08 + 0.22 * v[:, None, None]) * arc


PAINTERS: dict[str, Painter] = {
    "Atelectasis": _atelectasis,
    "Calcification of the Aorta": _calcification_aorta,
    "Consolidation": _consolidation,
    "Edema": _edema,
    "Emphysema": _emphysema_paint,
    "Fibrosis": _fibrosis,
    "Fracture": _fracture,
    "Hernia": _hernia,
    "Infiltration": _infiltration,
    "Lung Lesion": _lung_lesion,
    "Lung Opacity": _lung_opacity,
    "Mass": _mass,
    "Nodule": _nodule,
    "Pleural Effusion": _pleural_effusion,
    "Pleural Other": _pleural_other,
    "Pleural Thickening": _pleural_thickening,
    "Pneumomediastinum": _pneumomediastinum,
    "Pneumonia": _pneumonia,
    "Pneumoperitoneum": _pneumoperitoneum,
    "Pneumothorax": _pneumothorax,
    "Subcutaneous Emphysema": _subcutaneous_emphysema,
    "Support Devices": _support_devices,
    "Tortuous Aorta": _tortuous_aorta,
}
# Cardiomegaly and Enlarged Cardiomediastinum are drawn through the anatomy only; No Finding is nothing.
DRAWN_BY_ANATOMY_ONLY = ("Cardiomegaly", "Enlarged Cardiomediastinum")


def render_batch(
    labels: np.ndarray,
    visibility: np.ndarray,
    params: dict[str, np.ndarray],
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw B radiographs.

    Args:
        labels: uint8 (B, 26) clean labels (CXR-LT class order).
        visibility: float32 (B, 26) in [0, 1]: how conspicuous each positive finding is.
        params: (B,) anatomy and acquisition parameters (:func:`image_parameters`); copied.
        size: image side S.
        rng: drives the random placement of findings.

    Returns:
        uint8 (B, S, S).
    """
    params = {k: v.copy() for k, v in params.items()}
    for name, modify in MODIFIERS.items():
        j = CXRLT_CLASSES.index(name)
        rows = np.flatnonzero(labels[:, j])
        if rows.size:
            modify(params, rows, visibility[rows, j], rng)
    canvas = draw_anatomy(params, size)
    for name, paint in PAINTERS.items():
        j = CXRLT_CLASSES.index(name)
        rows = np.flatnonzero(labels[:, j])
        if rows.size:
            paint(canvas, rows, visibility[rows, j].astype(F32), rng)
    return finish(canvas, rng)
