"""``ral predict --aggregate study`` on a CXR-LT table without study_id: the studies come from ``fpath``
(files/pXX/p<subject>/s<study>/<dicom_id>.jpg), as ``ral evaluate`` and ``ral data stats`` derive them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ral import cli


def _cxrlt_images(root: Path) -> Path:
    """Six images of three studies (two patients) in the MIMIC layout, listed by dicom_id and fpath only."""
    rng = np.random.default_rng(0)
    rows = []
    for i, (subject, study) in enumerate([(1, 1), (1, 1), (1, 2), (2, 3), (2, 3), (2, 3)]):
        path = f"files/p10/p1000000{subject}/s5000000{study}/d{i}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(root / path)
        rows.append({"dicom_id": f"d{i}", "fpath": path})
    table = root / "development.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def test_predict_aggregates_studies_derived_from_fpath(trained_run, tmp_path, capsys):
    table = _cxrlt_images(tmp_path)
    checkpoint = trained_run["best_checkpoint"]
    args = ["predict", "--checkpoint", checkpoint, "--data", str(table), "--device", "cpu"]
    assert cli.main([*args, "--out", str(tmp_path / "images.csv")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "studies.csv"), "--aggregate", "study"]) == 0
    capsys.readouterr()
    images = pd.read_csv(tmp_path / "images.csv").set_index("id")
    studies = pd.read_csv(tmp_path / "studies.csv").set_index("id")
    for members in (["d0", "d1"], ["d2"], ["d3", "d4", "d5"]):
        expected = images.loc[members].mean(axis=0).to_numpy()
        np.testing.assert_allclose(studies.loc[members].to_numpy(), np.stack([expected] * len(members)), atol=1e-6)
