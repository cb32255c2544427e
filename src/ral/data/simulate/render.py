"""Vectorised drawing of chest-radiograph-like images: the anatomy and the exposure (the findings:
:mod:`ral.data.simulate.findings`).

Coordinates are normalised: x, y in [-1, 1], x to the image's right (the patient's left),
y downwards. Intensities are in [0, 1] (air dark, tissue / bone / metal bright) and
quantised to uint8 at the end. Every array is (B, S, S) float32 for a batch of B images.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

F32 = np.float32

# Per-patient anatomy: name -> (mean, sd); each image adds a jitter of a quarter of the sd.
ANATOMY = {
    "lung_cx": (0.37, 0.025),  # distance of each lung centre from the midline
    "lung_cy": (-0.08, 0.04),
    "lung_rx": (0.30, 0.025),
    "lung_ry": (0.52, 0.04),
    "heart_rx": (0.31, 0.035),  # half width of the heart shadow (cardiothoracic ratio ~0.45)
    "heart_ry": (0.23, 0.02),
    "heart_cx": (0.10, 0.02),
    "heart_cy": (0.30, 0.03),
    "med_w": (0.11, 0.02),  # half width of the upper mediastinum
    "rib_period": (0.17, 0.01),
    "rib_phase": (0.5, 0.29),
    "gastric": (0.0, 1.0),  # > 0.3: a normal gastric air bubble under the left hemidiaphragm
}
# Per-image acquisition: name -> (low, high), uniform.
ACQUISITION = {
    "gain": (0.85, 1.12),
    "offset": (-0.06, 0.06),
    "gamma": (0.8, 1.25),
    "noise": (0.02, 0.045),
    "tilt": (-0.05, 0.05),  # radians
    "shift_x": (-0.05, 0.05),
    "shift_y": (-0.05, 0.05),
}


def sample_patient_anatomy(n_patients: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(P,) arrays of per-patient anatomy parameters."""
    return {k: rng.normal(m, s, n_patients).astype(F32) for k, (m, s) in ANATOMY.items()}


def image_parameters(
    anatomy: dict[str, np.ndarray], patient: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """(B,) arrays: the patient's anatomy with image jitter (a quarter of the population sd)
    plus per-image acquisition parameters."""
    params = {k: anatomy[k][patient] + rng.normal(0.0, 0.25 * ANATOMY[k][1], patient.size).astype(F32) for k in ANATOMY}
    for k, (lo, hi) in ACQUISITION.items():
        params[k] = rng.uniform(lo, hi, patient.size).astype(F32)
    return params


@dataclass
class Canvas:
    """A batch being drawn: coordinates, anatomy masks and the image (all (B, S, S))."""

    x: np.ndarray
    y: np.ndarray
    p: dict[str, np.ndarray]  # (B, 1, 1) parameters
    lung_r: np.ndarray  # image-left lung (patient's right)
    lung_l: np.ndarray  # image-right lung (patient's left)
    heart: np.ndarray
    markings: np.ndarray  # vessel / rib texture inside the lungs (removed by pneumothorax)
    img: np.ndarray

    @cached_property
    def lungs(self) -> np.ndarray:
        return np.maximum(self.lung_r, self.lung_l)


def _soft(v: np.ndarray, sharp: float) -> np.ndarray:
    """Smooth step 0 -> 1 around v = 0."""
    return (0.5 + 0.5 * np.tanh(sharp * v)).astype(F32)


def ellipse(x, y, cx, cy, rx, ry, sharp: float = 8.0, power: float = 2.0) -> np.ndarray:
    """Soft (super-)ellipse mask in [0, 1]."""
    r = np.abs((x - cx) / rx) ** power + np.abs((y - cy) / ry) ** power
    return _soft(1.0 - r, sharp)


def gauss(x, y, cx, cy, sx, sy) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)).astype(F32)


def curve(x, y, x_of_y: np.ndarray, y0, y1, width) -> np.ndarray:
    """Soft line x = x_of_y(y) for y in [y0, y1] (a tube, a wire, a contour)."""
    inside = _soft(y - y0, 40.0) * _soft(y1 - y, 40.0)
    return (np.exp(-0.5 * ((x - x_of_y) / width) ** 2) * inside).astype(F32)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Band along the edge of a soft mask (peaks at 1 where the mask is 0.5)."""
    return (4.0 * mask * (1.0 - mask)).astype(F32)


def _col(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=F32).reshape(-1, 1, 1)


def lung_field(x, y, cx, cy, rx, ry) -> np.ndarray:
    """Soft lung-field mask: a super-ellipse narrowing towards the apex."""
    taper = 0.72 + 0.28 * np.clip((y - cy + ry) / (1.6 * ry), 0.0, 1.0)
    return ellipse(x, y, cx, cy, rx * taper, ry, sharp=7.0, power=2.4)


def draw_anatomy(params: dict[str, np.ndarray], size: int) -> Canvas:
    """Normal chest: body, lung fields with vessel markings and ribs, heart, mediastinum,
    spine, clavicles and diaphragm. Findings that change anatomy edit ``params`` first."""
    p = {k: _col(v) for k, v in params.items()}
    lin = np.linspace(-1.0, 1.0, size, dtype=F32)
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    c, s = np.cos(p["tilt"]), np.sin(p["tilt"])
    x = c * gx[None] - s * gy[None] - p["shift_x"]
    y = s * gx[None] + c * gy[None] - p["shift_y"]

    body = ellipse(x, y, 0.0, 0.15, 0.97, 1.25, sharp=6.0, power=2.5)
    below = _soft(y - p["lung_cy"] - p["lung_ry"] * 0.85, 6.0)  # abdomen under the diaphragm
    img = 0.08 + 0.38 * body + 0.16 * below * body
    lung_r = lung_field(x, y, -p["lung_cx"], p["lung_cy"], p["lung_rx"], p["lung_ry"])
    lung_l = lung_field(x, y, p["lung_cx"], p["lung_cy"] + 0.02, p["lung_rx"] * 0.95, p["lung_ry"] * 0.97)
    lungs = np.maximum(lung_r, lung_l)
    # vessel markings: brighter towards the hila, modulated by a few waves
    rng_phase = (p["rib_phase"] * 17.0) % 6.283
    waves = (np.cos(9.0 * x + 5.0 * y + rng_phase) * np.cos(7.0 * y - 11.0 * x + 2.0 * rng_phase) + 1.0) * 0.5
    hila = gauss(np.abs(x), y, p["lung_cx"] * 0.45, p["lung_cy"] + 0.05, 0.22, 0.3)
    vessels = 0.15 * hila * (0.5 + 0.5 * waves)
    # posterior ribs: bands rising from the spine and falling laterally
    yr = y - 0.45 * np.abs(x) + 0.55 * x**2
    ribs = np.clip((np.cos(6.283 * (yr / p["rib_period"] + p["rib_phase"])) - 0.5) / 0.5, 0.0, 1.0)
    rib_zone = _soft(0.5 - y, 5.0)
    markings = (vessels + 0.07 * ribs * rib_zone).astype(F32)
    img = img * (1.0 - lungs) + (0.22 + markings) * lungs
    img = img + 0.04 * ribs * rib_zone * (1.0 - lungs) * body
    # mediastinum, spine, heart
    med = _soft(p["med_w"] - np.abs(x - 0.02), 30.0) * _soft(p["heart_cy"] - y, 8.0) * _soft(y + 0.95, 8.0)
    spine = _soft(0.06 - np.abs(x), 40.0) * body
    heart = ellipse(x, y, p["heart_cx"], p["heart_cy"], p["heart_rx"], p["heart_ry"], sharp=9.0)
    dense = np.maximum(med, heart)
    img = img * (1.0 - dense) + 0.64 * dense + 0.05 * spine
    # clavicles
    for side in (-1.0, 1.0):
        xc = side * x
        clav = curve(y, xc, -0.66 + 0.12 * xc, 0.08, 0.62, 0.025)  # y as a function of x
        img = img + 0.10 * clav
    # normal gastric bubble under the left hemidiaphragm (a distractor for pneumoperitoneum)
    bubble = gauss(x, y, p["lung_cx"] + 0.02, p["lung_cy"] + p["lung_ry"] + 0.12, 0.07, 0.045)
    img = img - 0.22 * bubble * (p["gastric"] > 0.3)
    return Canvas(x=x, y=y, p=p, lung_r=lung_r, lung_l=lung_l, heart=heart, markings=markings, img=img.astype(F32))


def finish(canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    """Exposure (gain, offset, gamma), quantum noise, uint8 (B, S, S)."""
    p = canvas.p
    img = np.clip(canvas.img, 0.0, 1.0)
    img = np.clip(p["gain"] * img ** p["gamma"] + p["offset"], 0.0, 1.0)
    img = img + p["noise"] * rng.standard_normal(img.shape, dtype=F32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
