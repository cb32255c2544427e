"""Small inline SVG line charts for report.html: curves on the unit square, with axes and a legend.

Hand-written instead of matplotlib figures because a report draws two charts per class (PR and
ROC) plus the reliability diagram: as SVG text they cost milliseconds rather than a quarter
second each, stay sharp at any zoom, and need no image files or base64 next to the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

#: Points kept per curve (a PR curve of 10,000 test images has up to 10,000 steps).
MAX_POINTS = 200


@dataclass
class Series:
    """One line of a chart: x and y in [0, 1], its colour, legend label, dashes and markers."""

    x: Sequence[float]
    y: Sequence[float]
    colour: str = "#1f77b4"
    label: str = ""
    dashed: bool = False
    markers: bool = False
    sizes: Sequence[float] = field(default_factory=list)  # marker radii (markers only)


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of a curve, evenly spaced along it, first and last kept."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size <= max_points:
        return x, y
    keep = np.unique(np.round(np.linspace(0, x.size - 1, max_points)).astype(np.int64))
    return x[keep], y[keep]


def chart(
    series: Sequence[Series],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    width: int = 240,
    height: int = 210,
    step: bool = False,
) -> str:
    """An ``<svg>`` element: the series on [0, 1] x [0, 1] with ticks at 0, 0.5, 1 and a legend below.

    Args:
        step: draw lines as steps (a PR curve: precision holds until the next recall).
    """
    left, right, top = 34, 8, 18 if title else 6
    legend = [s for s in series if s.label]
    bottom = 30 + 12 * len(legend)
    plot_w, plot_h = width - left - right, height - top - bottom
    if plot_h < 40:
        height += 40 - plot_h
        plot_h = 40

    def px(value: float) -> float:
        return left + plot_w * min(max(value, 0.0), 1.0)

    def py(value: float) -> float:
        return top + plot_h * (1.0 - min(max(value, 0.0), 1.0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#999"/>',
    ]
    if title:
        parts.append(f'<text x="{width / 2:.1f}" y="12" text-anchor="middle" class="t">{escape(title)}</text>')
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<line x1="{px(tick):.1f}" y1="{top}" x2="{px(tick):.1f}" y2="{top + plot_h}" class="g"/>')
        parts.append(f'<line x1="{left}" y1="{py(tick):.1f}" x2="{left + plot_w}" y2="{py(tick):.1f}" class="g"/>')
        parts.append(f'<text x="{px(tick):.1f}" y="{top + plot_h + 10}" text-anchor="middle">{tick:g}</text>')
        parts.append(f'<text x="{left - 3}" y="{py(tick) + 3:.1f}" text-anchor="end">{tick:g}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 21}" text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text x="9" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 9 {top + plot_h / 2:.1f})">{escape(ylabel)}</text>'
    )
    for s in series:
        xs, ys = thin(np.asarray(s.x), np.asarray(s.y))
        if xs.size == 0:
            continue
        if s.markers:
            radii = list(s.sizes) or [2.5] * xs.size
            for x, y, r in zip(xs, ys, radii):
                if np.isfinite(x) and np.isfinite(y):
                    parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{r:.1f}" fill="{s.colour}"/>')
            continue
        points = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            if step and i:
                points.append(f"{px(x):.1f},{py(ys[i - 1]):.1f}")
            points.append(f"{px(x):.1f},{py(y):.1f}")
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.colour}" stroke-width="1.4"{dash}/>'
        )
    for i, s in enumerate(legend):
        y = top + plot_h + 32 + 12 * i
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        parts.append(f'<line x1="{left}" y1="{y - 3}" x2="{left + 14}" y2="{y - 3}" stroke="{s.colour}"{dash}/>')
        parts.append(f'<text x="{left + 18}" y="{y}">{escape(s.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
