"""Study-level aggregation of image probabilities, as the CXR-LT 2024 placed teams did.

A chest X-ray study holds one to a few views (frontal, lateral) of the same examination, and
its labels are the study's: averaging the probabilities of its images gives every image the
study's answer. ``"study"`` is the mean over the study's images; ``"view-study"`` first takes
the mean over the images of each view type (frontal / lateral / other) of the study, then the
mean over its view types, so a study with two frontal images and one lateral weighs both views
equally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from ral.data.table import LabelTable

#: The values of ``aggregate=`` / ``--aggregate``.
#: Every image gets the mean of its study's images ("study"), or of its view types' means ("view-study").
Aggregation = Literal["none", "study", "view-study"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


def check_aggregate(aggregate: str) -> str:
    """Return ``aggregate`` if it is one of :data:`AGGREGATIONS`; raise ``ValueError`` otherwise."""
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
    return aggregate


def _group_means(values: np.ndarray, group: np.ndarray, num_groups: int) -> np.ndarray:
    """Mean of the rows of ``values`` (N, C) per group index ``group`` (N,) -> (num_groups, C)."""
    sums = np.zeros((num_groups, values.shape[1]), dtype=np.float64)
    np.add.at(sums, group, values)
    return sums / np.bincount(group, minlength=num_groups)[:, None]


def aggregate_probabilities(
    probs: np.ndarray, study_ids: Sequence[str], views: Sequence[str] | None = None
) -> np.ndarray:
    """Every image's probabilities replaced by its study's.

    Without ``views``: p_s = mean of p_i over the images i of study s. With ``views``:
    p_s = mean over the view types v of study s of (mean of p_i over its images of view v).

    Args:
        probs: (N, C) probabilities of N images.
        study_ids: length N, the study of each image.
        views: length N, the view type of each image (e.g. "frontal" / "lateral"), or None.

    Returns:
        (N, C) float64: row i holds the probabilities of the study of image i.

    Raises:
        ValueError: ``probs`` is not 2-D, or ``study_ids`` / ``views`` have not N entries.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (N, C), got {probs.shape}")
    n = probs.shape[0]
    views = [""] * n if views is None else views
    if len(study_ids) != n or len(views) != n:
        raise ValueError(
            f"study_ids and views must have the N = {n} entries of probs, got {len(study_ids)} and {len(views)}"
        )
    if n == 0:
        return probs.copy()
    _, study = np.unique(np.asarray(study_ids, dtype=str), return_inverse=True)
    view_names, view = np.unique(np.asarray(views, dtype=str), return_inverse=True)
    pairs, pair = np.unique(study * len(view_names) + view, return_inverse=True)  # one group per (study, view)
    view_means = _group_means(probs, pair, len(pairs))
    study_means = _group_means(view_means, pairs // len(view_names), int(study.max()) + 1)
    return study_means[study]


def aggregation_keys(
    table: LabelTable, aggregate: str, *, key: str = "data"
) -> tuple[list[str], list[str] | None] | None:
    """The study ids (and, for "view-study", the view types) that ``aggregate`` groups ``table``'s images by.

    View types come from :func:`ral.data.formats.view_types` ("frontal", "lateral", or the
    format's own view name); an image whose view is not recorded ("") is a view type of its own.
    Where the table records patients, a study is keyed by (patient, study id): a study id that
    occurs under two patients (per-patient numbering such as ``s1``, or a data error) is two
    studies, never one study across patients.

    Returns:
        None for "none"; else ``(study_keys, views)`` with ``views`` None for "study".

    Raises:
        ValueError: naming ``aggregate`` and ``key`` (the table's option) when the table has no
            study ids, an image without one, or (for "view-study") no views.
    """
    from ral.data.formats import view_types

    if check_aggregate(aggregate) == "none":
        return None
    where = f"{key} {table.source} ({table.format} table)" if table.source is not None else f"{key} (image files)"
    if table.study_ids is None:
        raise ValueError(
            f"aggregate {aggregate!r}: {where} has no study ids (CXR-LT, MIMIC-CXR-JPG, PadChest and generic "
            "tables with a study_id column have them)"
        )
    blank = [table.ids[i] for i, study in enumerate(table.study_ids) if not study]
    if blank:
        raise ValueError(
            f"aggregate {aggregate!r}: {len(blank)} image(s) of {where} have no study id (first: {blank[0]})"
        )
    studies = list(table.study_ids)
    if table.subject_ids != table.ids:  # patients recorded: study "s1" of patient p1 is not that of p2
        studies = [f"{subject}\x1f{study}" for subject, study in zip(table.subject_ids, studies)]
    if aggregate == "study":
        return studies, None
    views = view_types(table)
    if views is None:
        raise ValueError(
            f"aggregate {aggregate!r}: {where} records no views (a ViewPosition, Projection or view column); "
            "use aggregate 'study'"
        )
    return studies, views


def aggregate_table(probs: np.ndarray, keys: tuple[list[str], list[str] | None] | None) -> np.ndarray:
    """``probs`` (N, C) aggregated by the ``keys`` of :func:`aggregation_keys` (unchanged for None)."""
    return probs if keys is None else aggregate_probabilities(probs, *keys)
