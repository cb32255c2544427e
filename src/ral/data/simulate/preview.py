"""Sample-image grid of a simulated dataset: one row per class, visibility rising left to right."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ral.report.files import atomic_write


def render_examples(task: str, class_index: int, n: int, size: int, seed: int) -> np.ndarray:
    """uint8 (n, S, S) images showing only class ``class_index`` at visibility 0.1 ... 1.0."""
    rng = np.random.default_rng([seed, 99, class_index])
    visibility = np.linspace(0.1, 1.0, n, dtype=np.float32)
    if task == "multilabel":
        from ral.data.classes import CXRLT_CLASSES
        from ral.data.simulate.findings import render_batch
        from ral.data.simulate.render import image_parameters, sample_patient_anatomy

        labels = np.zeros((n, len(CXRLT_CLASSES)), dtype=np.uint8)
        labels[:, class_index] = 1
        vis = np.repeat(visibility[:, None], len(CXRLT_CLASSES), axis=1)
        params = image_parameters(sample_patient_anatomy(n, rng), np.arange(n), rng)
        return render_batch(labels, vis, params, size, rng)
    if task == "fundus":
        from ral.data.simulate.fundus import render_fundus

        return render_fundus(np.full(n, class_index), visibility, size, rng)
    from ral.data.simulate.skin import render_lesions

    return render_lesions(np.full(n, class_index), visibility, size, rng)


def preview_grid(
    path: str | os.PathLike, *, task: str = "multilabel", size: int = 64, per_row: int = 6, seed: int = 0
) -> Path:
    """Write a PNG grid: one row per class (26 findings, 7 skin classes or 5 DR grades), ``per_row`` images.

    Each row draws that class alone on fresh anatomy, with visibility from 0.1 (left) to 1.0
    (right); the "No Finding" row shows normal radiographs. Written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ral.data.classes import APTOS_CLASSES, CXRLT_CLASSES, ISIC2018_CLASSES

    classes = {"multilabel": CXRLT_CLASSES, "single": ISIC2018_CLASSES, "fundus": APTOS_CLASSES}[task]
    rows = [render_examples(task, j, per_row, size, seed) for j in range(len(classes))]
    label_width = {"multilabel": 2.2, "single": 0.8, "fundus": 1.4}[task]
    height = len(classes) * 0.9 + 0.45
    fig = Figure(figsize=(per_row * 0.9 + label_width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(classes), per_row, squeeze=False)
    for j, (name, images) in enumerate(zip(classes, rows)):
        for col in range(per_row):
            ax = axes[j, col]
            ax.imshow(images[col], cmap="gray", vmin=0, vmax=255, interpolation="nearest")  # RGB: as is
            ax.set_xticks([])
            ax.set_yticks([])
        axes[j, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(
        "simulated "
        + {"multilabel": "chest radiographs", "single": "skin lesions", "fundus": "fundus photographs"}[task]
        + ": one class per row, visibility 0.1 -> 1.0",
        fontsize=9,
        y=1 - 0.12 / height,
    )
    width = per_row * 0.9 + label_width
    fig.subplots_adjust(
        left=label_width / width, right=0.99, top=1 - 0.45 / height, bottom=0.01, wspace=0.04, hspace=0.06
    )
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=80))
