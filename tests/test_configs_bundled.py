"""Bundled configs (package data, `ral configs`), LICENSE and configs in the wheel, warm-up at one epoch, the
README's command block and the figures of docs/dataset.md."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
import torch
import yaml

from ral.cli import main
from ral.engine.config import CHECK_INSTALLED, Config
from ral.engine.configfile import load_config
from ral.engine.schedule import lr_schedule

REPO = Path(__file__).resolve().parents[1]
BUNDLED = Path(str(files("ral") / "configs"))
NAMES = sorted(p.stem for p in BUNDLED.glob("*.yaml"))


def test_configs_folder_of_the_clone_is_the_bundled_one():
    assert (REPO / "configs").resolve() == BUNDLED.resolve()
    assert {"demo", "cxrlt2023-convnext", "chestmnist", "dermamnist", "retinamnist"} <= set(NAMES)


def test_ral_configs_lists_every_bundled_config_and_prints_one_as_shipped(capsys):
    assert main(["configs"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == NAMES
    assert main(["configs", "chestmnist"]) == 0
    assert capsys.readouterr().out == (BUNDLED / "chestmnist.yaml").read_text()
    assert main(["configs", "chestmnst"]) == 2
    err = capsys.readouterr().err
    assert "no bundled config 'chestmnst'" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", NAMES)
def test_every_bundled_config_validates(name):
    raw = yaml.safe_load((BUNDLED / f"{name}.yaml").read_text())
    config = Config.model_validate(raw, context={CHECK_INSTALLED: False})  # timm: checked where it imports
    assert config.dataset.train and config.output_dir.startswith("runs/")


def test_the_2024_config_trains_for_one_epoch_its_warm_up_then_spanning_the_run():
    config = load_config(REPO / "configs" / "cxrlt2024-task1.yaml", ["train.epochs=1"])
    assert config.schedule.warmup_epochs == config.train.epochs == 1
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    schedule = lr_schedule(optimizer, total_steps=4, warmup_steps=4, schedule="cosine", min_lr_ratio=0.0)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    with pytest.raises(ValueError, match=r"warmup_epochs must be at most train.epochs \(1\), got 1.5"):
        load_config(REPO / "configs" / "cxrlt2024-task1.yaml", ["train.epochs=1", "schedule.warmup_epochs=1.5"])


def test_medmnist_configs_read_the_folders_their_comment_writes():
    for name in ("chestmnist", "dermamnist", "retinamnist"):
        text = (BUNDLED / f"{name}.yaml").read_text()
        out = re.search(rf"ral data medmnist {name} .*--out (\S+)", text).group(1)
        assert yaml.safe_load(text)["dataset"]["train"] == f"{out}/train.csv"


def test_readme_commands_use_the_folder_the_demo_config_reads_and_say_how_to_get_ral_on_path():
    readme = (REPO / "README.md").read_text()
    demo_train = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())["dataset"]["train"]
    folder = demo_train.rsplit("/", 1)[0]
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, flags=re.S))
    simulated = set(re.findall(r"\bdata/sim[\w-]*", blocks))
    assert simulated == {folder}, simulated
    assert "source .venv/bin/activate" in readme


def test_convnext_config_builds_timms_model_where_timm_imports():
    pytest.importorskip("timm")
    from ral.models import build_model

    config = load_config(REPO / "configs" / "cxrlt2023-convnext.yaml")
    model = build_model(config.model.backbone, 26, in_channels=config.dataset.channels)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 26)


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_the_license(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("ral-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"ral/configs/{name}.yaml" for name in NAMES} <= set(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith("/LICENSE") for name in names)


@pytest.mark.slow
def test_dataset_md_figures_are_those_of_ral_data_stats_on_the_default_simulation(tmp_path, capsys):
    """The training labels depend on the seed and the split sizes only, so 16 px images give the same tables."""
    assert main(["data", "simulate", "--out", str(tmp_path / "sim"), "--size", "16"]) == 0
    stats = {}
    for split in ("train", "val", "test"):
        capsys.readouterr()
        assert main(["data", "stats", str(tmp_path / "sim" / f"{split}.csv")]) == 0
        printed = capsys.readouterr().out
        stats[split] = {
            m[0].strip(): int(m[1]) for m in re.findall(r"^([^\d\n]+?)[ ]+(\d+)\s+0\.\d+\s+\d+\s+\w+$", printed, re.M)
        }
        stats[split]["images"] = int(re.search(r"images: (\d+)", printed).group(1))
        if split == "train":
            ratio = re.search(r"imbalance ratio: ([\d.]+)", printed).group(1)
    doc = (REPO / "docs" / "dataset.md").read_text()
    train = stats["train"]
    support, rarest = train["Support Devices"], train["Pneumoperitoneum"]
    assert f"Devices has {support:,} positives and Pneumoperitoneum {rarest} (imbalance ratio {ratio}" in " ".join(
        doc.split()
    )
    rare = ("Pleural Other", "Pneumomediastinum", "Pneumoperitoneum")
    held_out = [stats[s][c] / stats[s]["images"] for s in ("val", "test") for c in rare]
    trained = [train[c] / train["images"] for c in rare]
    expected = f"({min(held_out):.1%}-{max(held_out):.1%})".replace("%-", "-")
    assert f"val / test prevalence {expected}" in " ".join(doc.split())
    assert f"in training ({min(trained):.1%}-{max(trained):.1%})".replace("%-", "-") in " ".join(doc.split())
