"""Label model of the simulated chest-radiograph dataset: patients, studies, co-occurrence,
quotas, noise.

Images belong to studies (one to three views of one examination, sharing its labels, as in
MIMIC-CXR where labels are mined from the study's report) and studies to patients. Each
patient has six latent factors (cardiac, icu, infection, trauma, chronic, oncology); each
study's factors are the patient's plus a small study-level jitter. A class's positive studies
are drawn *without replacement* with weights ``exp(loading . z + bonus)``, where ``bonus``
rewards studies that already hold related findings, so the per-split positive counts are exact
quotas while co-occurrence follows the shared factors.
"""

from __future__ import annotations

import numpy as np

from ral.data.classes import CXRLT_CLASSES, CXRLT_NUM_TRAIN_IMAGES, CXRLT_TRAIN_COUNTS

FACTORS = ("cardiac", "icu", "infection", "trauma", "chronic", "oncology")

# class -> (factor loadings, bonus for already-positive related classes). Classes are drawn in
# this order, so every bonus refers to a class drawn earlier.
LABEL_MODEL: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "Support Devices": ({"icu": 1.6, "cardiac": 0.5, "trauma": 0.5}, {}),
    "Cardiomegaly": ({"cardiac": 1.6, "chronic": 0.5}, {}),
    "Edema": ({"cardiac": 1.0, "icu": 0.7}, {"Cardiomegaly": 0.8}),
    "Pleural Effusion": ({"cardiac": 1.0, "icu": 0.8, "oncology": 0.5}, {"Edema": 1.2, "Cardiomegaly": 0.6}),
    "Enlarged Cardiomediastinum": ({"cardiac": 1.0, "chronic": 0.5}, {"Cardiomegaly": 1.2}),
    "Atelectasis": ({"icu": 1.0, "infection": 0.5}, {"Pleural Effusion": 1.0}),
    "Pneumonia": ({"infection": 1.8, "icu": 0.3}, {}),
    "Consolidation": ({"infection": 1.5}, {"Pneumonia": 1.5}),
    "Infiltration": ({"infection": 1.2}, {"Pneumonia": 0.8}),
    "Lung Opacity": (
        {"infection": 1.0, "icu": 0.5},
        {"Pneumonia": 1.2, "Consolidation": 1.2, "Edema": 0.8, "Atelectasis": 0.8, "Infiltration": 0.8},
    ),
    "Pneumothorax": ({"trauma": 1.5, "icu": 0.8}, {}),
    "Subcutaneous Emphysema": ({"trauma": 1.0}, {"Pneumothorax": 2.5}),
    "Pneumomediastinum": ({"trauma": 1.0}, {"Subcutaneous Emphysema": 2.0, "Pneumothorax": 1.0}),
    "Pneumoperitoneum": ({"trauma": 0.8, "icu": 0.6}, {"Pneumomediastinum": 1.0}),
    "Fracture": ({"trauma": 1.8, "chronic": 0.3}, {}),
    "Emphysema": ({"chronic": 1.5}, {}),
    "Fibrosis": ({"chronic": 1.5}, {"Emphysema": 0.5}),
    "Calcification of the Aorta": ({"chronic": 1.8}, {}),
    "Tortuous Aorta": ({"chronic": 1.5}, {"Calcification of the Aorta": 1.5}),
    "Hernia": ({"chronic": 1.2}, {}),
    "Nodule": ({"oncology": 1.5, "chronic": 0.3}, {}),
    "Mass": ({"oncology": 1.8}, {"Nodule": 0.5}),
    "Lung Lesion": ({"oncology": 1.5}, {"Mass": 1.0, "Nodule": 1.0}),
    "Pleural Thickening": ({"chronic": 0.8, "oncology": 0.5}, {"Pleural Effusion": 0.5}),
    "Pleural Other": ({"oncology": 0.8, "chronic": 0.5}, {"Pleural Thickening": 1.0}),
}
NO_FINDING = "No Finding"
# Support Devices is the one finding "No Finding" allows (as in CheXpert-style labelling).
ALLOWED_WITH_NO_FINDING = ("Support Devices",)


def cxrlt_prevalence() -> np.ndarray:
    """(26,) CXR-LT 2023 training prevalence, in ``CXRLT_CLASSES`` order."""
    return np.array([CXRLT_TRAIN_COUNTS[c] for c in CXRLT_CLASSES], dtype=np.float64) / CXRLT_NUM_TRAIN_IMAGES


def clean_prevalence(missing_rate: float) -> np.ndarray:
    """(26,) prevalence of the clean labels, so that after removing ``missing_rate`` of the
    positives (every class but No Finding) the training labels match CXR-LT's counts."""
    prev = cxrlt_prevalence() / (1.0 - missing_rate)
    prev[CXRLT_CLASSES.index(NO_FINDING)] = cxrlt_prevalence()[CXRLT_CLASSES.index(NO_FINDING)]
    return prev


def quotas(n_images: int, prevalence: np.ndarray, min_positives: int) -> np.ndarray:
    """(C,) exact number of positives per class: ``round(n * prevalence)``, at least ``min_positives``."""
    return np.maximum(np.rint(n_images * prevalence), min_positives).astype(np.int64)


#: Views of a study by position: a frontal view, then a lateral one, then another frontal one.
VIEWS = ("PA", "LATERAL", "AP")
#: Probability of a study having 1, 2 or 3 views.
VIEWS_PER_STUDY = (0.35, 0.55, 0.10)


def sample_studies(n_images: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N,) study index and (N,) view index (into :data:`VIEWS`) of each image."""
    sizes = rng.choice(np.arange(1, len(VIEWS) + 1), p=VIEWS_PER_STUDY, size=n_images)
    study = np.repeat(np.arange(n_images), sizes)[:n_images]
    view = np.concatenate([np.arange(k) for k in sizes])[:n_images]
    return study, view


def sample_patients(n_items: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) patient index of each item (study): 1-6 per patient (mean about 2.2)."""
    sizes = np.minimum(rng.geometric(0.45, size=n_items), 6)
    return np.repeat(np.arange(n_items), sizes)[:n_items]


def sample_factors(patient: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, F) latent factors: the patient's (standard normal) plus study-level jitter."""
    per_patient = rng.standard_normal((int(patient.max()) + 1, len(FACTORS)))
    jitter = rng.standard_normal((patient.size, len(FACTORS)))
    return (0.85 * per_patient[patient] + 0.53 * jitter).astype(np.float64)


def _top_k(log_weight: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k items drawn without replacement with probability ~ exp(log_weight) (Gumbel top-k)."""
    keys = log_weight + rng.gumbel(size=log_weight.size)
    if k >= np.isfinite(keys).sum():
        return np.flatnonzero(np.isfinite(keys))
    return np.argpartition(-keys, k - 1)[:k]


def sample_labels(factors: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clean labels uint8 (n, 26) with exactly ``counts[c]`` positives per class (when feasible).

    "No Finding" goes first to the healthiest studies (lowest factors); those are then excluded
    from every finding except Support Devices.
    """
    n = factors.shape[0]
    labels = np.zeros((n, len(CXRLT_CLASSES)), dtype=np.uint8)
    col = {c: j for j, c in enumerate(CXRLT_CLASSES)}
    nf = _top_k(-1.2 * factors.sum(axis=1) / np.sqrt(len(FACTORS)), int(counts[col[NO_FINDING]]), rng)
    labels[nf, col[NO_FINDING]] = 1
    is_nf = labels[:, col[NO_FINDING]].astype(bool)
    for name, (loadings, bonus) in LABEL_MODEL.items():
        logw = np.zeros(n)
        for factor, weight in loadings.items():
            logw += weight * factors[:, FACTORS.index(factor)]
        for other, weight in bonus.items():
            logw += weight * labels[:, col[other]]
        if name not in ALLOWED_WITH_NO_FINDING:
            logw[is_nf] = -np.inf
        else:
            logw[is_nf] -= 1.5
        labels[_top_k(logw, int(counts[col[name]]), rng), col[name]] = 1
    return labels


def drop_positives(labels: np.ndarray, missing_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Report-mining noise: exactly ``round(rate * positives)`` positives of each class but
    No Finding become 0. Returns a new array; ``labels`` is not modified."""
    noisy = labels.copy()
    for j, name in enumerate(CXRLT_CLASSES):
        if name == NO_FINDING:
            continue
        pos = np.flatnonzero(noisy[:, j])
        n_drop = int(round(missing_rate * pos.size))
        if n_drop:
            noisy[rng.choice(pos, size=n_drop, replace=False), j] = 0
    return noisy
