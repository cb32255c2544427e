"""report.html of ``ral evaluate`` and ``ral report``: self-contained, every class, ECE, the gallery."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ral.cli import main
from ral.metrics.calibration import expected_calibration_error


class _Page(HTMLParser):
    """Tags of interest of a report page: external references, table rows, gallery pictures."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.classes: list[str] = []
        self.gallery: list[str] = []
        self.overlays = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for key in ("src", "href"):
            value = found.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)
        if tag in ("script", "link") and (found.get("src") or found.get("href")):
            self.external.append(f"{tag} {found}")
        if tag == "tr" and "data-class" in found:
            self.classes.append(found["data-class"])
        if tag == "h3" and "data-gallery" in found:
            self.gallery.append(found["data-gallery"])
        if tag == "img" and found.get("class") == "cam":
            self.overlays += 1


def _page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture
def evaluated(evaluated_report: Path, tmp_path: Path) -> Path:
    """A copy of the session's evaluation folder (these tests rewrite its report.html)."""
    return Path(shutil.copytree(evaluated_report, tmp_path / "eval"))


def test_evaluate_writes_a_self_contained_report_with_every_class_and_ece(evaluated, classes, tiny_data) -> None:
    page = _page(evaluated / "report.html")
    assert page.external == []  # no network request: pictures are data: URLs, no script or style files
    assert sorted(page.classes) == sorted(classes)
    assert page.gallery and page.overlays > 0  # the rarest classes, with Grad-CAM maps
    text = (evaluated / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"\b(src|href)=\"https?:", text)
    metrics = json.loads((evaluated / "metrics.json").read_text(encoding="utf-8"))
    probs = pd.read_csv(evaluated / "predictions.csv")[classes].to_numpy()
    labels = pd.read_csv(tiny_data["test"])[classes].to_numpy(dtype=float)  # blank cells: NaN (unknown)
    assert metrics["ECE"] == pytest.approx(expected_calibration_error(labels.ravel(), probs.ravel()))
    assert {"ECE_head", "ECE_medium", "ECE_tail", "ECE_bins"} <= set(metrics)
    assert f"{metrics['mAP']:.4f}" in text  # the headline metric with its interval
    low, high = metrics["ci95"]["mAP"]
    assert f"95% CI {low:.4f} – {high:.4f}" in text


def test_ral_report_rebuilds_with_chosen_gallery_classes(evaluated, classes, capsys) -> None:
    before = (evaluated / "report.html").stat().st_mtime_ns
    assert main(["report", str(evaluated), "--classes", *classes[:3], "--per-kind", "1"]) == 0
    assert f"wrote {evaluated / 'report.html'}" in capsys.readouterr().out
    page = _page(evaluated / "report.html")
    assert page.gallery == classes[:3]
    assert 1 <= page.overlays <= 3 * 3  # at most one picture per kind and class, each with its map
    assert (evaluated / "report.html").stat().st_mtime_ns > before


def test_ral_report_of_a_run_folder_covers_each_evaluation(evaluated, tmp_path, capsys) -> None:
    copy = Path(shutil.copytree(evaluated, tmp_path / "run" / "eval" / "test"))
    (copy / "report.html").unlink()
    assert main(["report", str(tmp_path / "run"), "--no-gradcam"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {copy / 'report.html'}"
    page = _page(copy / "report.html")
    assert page.gallery and page.overlays == 0


def test_ral_report_bad_input_is_one_line(evaluated, tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a folder" in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert main(["report", str(evaluated), "--classes", "Nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'Nope'" in err
    assert main(["report", str(evaluated), "--per-kind", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "per-kind" in err.replace("_", "-") and "-1" in err


def test_bench_comparison_page(tmp_path) -> None:
    from ral.report.html import write_bench_report

    folder = tmp_path / "losses"
    metrics = {"mAP": 0.3, "mAUC": 0.7, "mF1": 0.2, "head_mAP": 0.5, "medium_mAP": 0.3, "tail_mAP": 0.1}
    (folder / "runs").mkdir(parents=True)
    settings = {"benchmark": "losses", "data": {"task": "multilabel"}, "budget": {"name": "quick"}}
    (folder / "bench.json").write_text(json.dumps(settings), encoding="utf-8")
    rng = np.random.default_rng(0)
    for loss in ("bce", "ral"):
        for seed in range(3):
            shift = 0.02 * (loss == "ral") + 0.01 * rng.random()
            result = {
                "run_id": f"{loss}-seed{seed}",
                "spec": {"label": loss, "loss": loss, "params": {}, "seed": seed},
                **{name: value + shift for name, value in metrics.items()},
                "seconds_per_epoch": 1.0,
                "per_class": {"class": ["A", "B"], "count": [90, 5], "group": ["head", "tail"], "score": [0.8, shift]},
            }
            run = folder / "runs" / result["run_id"]
            run.mkdir()
            (run / "result.json").write_text(json.dumps(result), encoding="utf-8")
    page = write_bench_report(folder)
    text = page.read_text(encoding="utf-8")
    assert 'data-loss="bce"' in text and 'data-loss="ral"' in text  # side by side
    assert "Paired differences" in text and "higher" in text  # ral is 0.02 above bce on every seed
    assert _page(page).classes == ["A", "B"] and _page(page).external == []
