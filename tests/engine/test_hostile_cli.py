"""Every CLI error one line, checked before work (issue 19): bombs, devices, ids, tables without rows,
tampered checkpoints, config bounds, one-class tables, broken pretrained files, broken pipes."""

from __future__ import annotations

import fractions
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from ral.cli import main
from ral.engine.checkpoint import load_checkpoint
from ral.models import read_state_dict


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv: str) -> str:
    """The error of a command that must fail with status 2 and one line on stderr."""
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    return err


def png_header(path: Path, width: int, height: int) -> Path:
    """A 1-bit PNG claiming ``width`` x ``height`` pixels (its header; images are judged by it before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


def test_predict_refuses_a_bomb_in_one_line(trained_run, tmp_path, capsys):
    bomb = png_header(tmp_path / "bomb.png", 20000, 20000)
    err = one_line_error(
        capsys, "predict", "--checkpoint", trained_run["best_checkpoint"], bomb, "--out", tmp_path / "p"
    )
    assert "bomb.png is 20000 x 20000 = 400,000,000 pixels, more than the limit of 89,478,485" in err
    assert not (tmp_path / "p").exists()


def test_predict_uses_the_pixel_limit_of_the_run(trained_run, tmp_path, capsys):
    checkpoint = load_checkpoint(trained_run["best_checkpoint"])
    checkpoint["ral"]["config"]["dataset"]["max_image_pixels"] = 200
    torch.save(checkpoint, tmp_path / "strict.ckpt")
    Image.new("L", (16, 16)).save(tmp_path / "x.png")
    err = one_line_error(capsys, "predict", "--checkpoint", tmp_path / "strict.ckpt", tmp_path / "x.png", "--out", "p")
    assert "x.png is 16 x 16 = 256 pixels, more than the limit of 200" in err


@pytest.mark.slow  # trains
def test_train_drops_a_bomb_with_skip_bad_and_names_it_without(tiny_data, tiny_config, tmp_path, capsys):
    data = {"train": tmp_path / "train.csv", "val": tiny_data["val"]}
    lines = tiny_data["train"].read_text().splitlines()
    Image.new("L", (100, 100)).save(tmp_path / "bomb.png")
    rows = [line.replace("images/", f"{tiny_data['train'].parent}/images/", 1) for line in lines[1:]]
    data["train"].write_text("\n".join([lines[0], *rows, f"{tmp_path / 'bomb.png'},p99,1,0,0,0"]) + "\n")
    config = tiny_config(data, tmp_path / "run", dataset={"max_image_pixels": 5000})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    err = one_line_error(capsys, "train", "--config", tmp_path / "c.yaml")
    assert "bomb.png is 100 x 100 = 10,000 pixels, more than the limit of 5,000" in err
    with pytest.warns(UserWarning, match=r"skipped 1 of 65 image\(s\).*bomb\.png is 100 x 100"):
        code, _, err = run(capsys, "train", "--config", tmp_path / "c.yaml", "dataset.skip_bad=true", "--overwrite")
    assert code == 0, err
    assert "bomb.png" in (tmp_path / "run" / "skipped_images.csv").read_text()


def test_predict_ids_are_unique(trained_run, tmp_path, capsys):
    for name in ("a/good.jpg", "a/good.png", "a/x.png", "b/x.png"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (16, 16), 80).save(tmp_path / "in" / name)
    ckpt = trained_run["best_checkpoint"]
    assert run(capsys, "predict", "--checkpoint", ckpt, tmp_path / "in", "--out", tmp_path / "p.csv")[0] == 0
    ids = (tmp_path / "p.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in ids[1:]] == ["a/good.jpg", "a/good.png", "a/x", "b/x"]
    files = (tmp_path / "in" / "a" / "x.png", tmp_path / "in" / "b" / "x.png")
    err = one_line_error(capsys, "predict", "--checkpoint", ckpt, *files, "--out", tmp_path / "q.csv")
    assert "would both get the id 'x.png'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a torch without CUDA")
def test_an_unavailable_device_is_refused_before_work(trained_run, tmp_path, capsys):
    ckpt = trained_run["best_checkpoint"]
    for device, command in (("cuda", ["predict", tmp_path, "--out", tmp_path / "p"]), ("cuda:3", ["evaluate"])):
        err = one_line_error(capsys, command[0], "--checkpoint", ckpt, *command[1:], "--device", device)
        assert f"device {device!r}: this PyTorch" in err and "has no CUDA support" in err
    assert list(tmp_path.iterdir()) == []


def test_evaluate_of_a_table_without_rows_names_it(trained_run, tiny_data, tmp_path, capsys):
    header = tmp_path / "header_only.csv"
    header.write_text(tiny_data["test"].read_text().splitlines()[0] + "\n")
    err = one_line_error(capsys, "evaluate", "--checkpoint", trained_run["best_checkpoint"], "--data", header)
    assert "header_only.csv has no rows" in err


def test_a_checkpoint_whose_class_names_do_not_fit_its_model_is_refused(trained_run, tmp_path, capsys):
    checkpoint = load_checkpoint(trained_run["best_checkpoint"])
    checkpoint["ral"]["class_names"] = checkpoint["ral"]["class_names"][:1]
    torch.save(checkpoint, tmp_path / "tampered.ckpt")
    err = one_line_error(
        capsys, "predict", "--checkpoint", tmp_path / "tampered.ckpt", tmp_path, "--out", tmp_path / "p"
    )
    assert "lists 1 class name(s) for a model of 4 outputs" in err


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=4294967296", "config key 'seed': input should be less than or equal to 4294967295"),
        ("train.batch_size=100000000000000000000", "config key 'train.batch_size': input should be less than"),
        ("dataset.classes=[Alpha,Alpha]", "config key 'dataset.classes': each class once, but ['Alpha'] given"),
    ],
)
def test_config_bounds_are_named_before_anything_is_written(
    tiny_data, tiny_config, tmp_path, capsys, override, message
):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config(tiny_data, tmp_path / "run")))
    assert message in one_line_error(capsys, "train", "--config", tmp_path / "c.yaml", override)
    assert not (tmp_path / "run").exists()


def test_a_single_label_table_of_one_class_is_refused_before_training(tiny_config, tmp_path, capsys):
    for i in range(4):
        (tmp_path / "train" / "only").mkdir(parents=True, exist_ok=True)
        Image.new("L", (16, 16), 10 * i).save(tmp_path / "train" / "only" / f"{i}.png")
    config = tiny_config(
        {"train": tmp_path / "train", "val": tmp_path / "train"}, tmp_path / "run", loss={"name": "ce"}
    )
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    err = one_line_error(capsys, "train", "--config", tmp_path / "c.yaml")
    assert "needs rows of at least 2 classes to train on, got rows of 1 (['only'])" in err


def test_broken_pretrained_files_are_one_line(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(100)}, tmp_path / "w.safetensors")
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "w.safetensors").read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cannot read pretrained weights file .*cut\.safetensors as safetensors"):
        read_state_dict(tmp_path / "cut.safetensors")
    torch.save({"w": fractions.Fraction(1, 3)}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError) as caught:
        read_state_dict(tmp_path / "pickled.pt")
    message = str(caught.value)
    assert "\n" not in message and "weights_only" not in message and "refused (it could run code)" in message


def test_a_closed_stdout_ends_quietly(tmp_path, capsys, monkeypatch):
    def reader_gone(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    redirected = []
    monkeypatch.setattr("ral.data.stats.format_stats", reader_gone)
    monkeypatch.setattr(os, "dup2", lambda fd, fd2: redirected.append(fd2))
    monkeypatch.setattr("sys.stdout.fileno", lambda: 1, raising=False)
    (tmp_path / "t.csv").write_text("path,A,B\na.png,1,0\nb.png,0,1\n")
    assert run(capsys, "data", "stats", tmp_path / "t.csv") == (141, "", "")
    assert redirected == [1]


def test_a_yaml_alias_bomb_is_not_printed_whole(tiny_data, tiny_config, tmp_path, capsys):
    lines = ["model:", "  options:", "    x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"    x{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]" for k in range(1, 7)]
    config = tiny_config(tiny_data, tmp_path / "run")
    del config["model"]
    text = "\n".join(lines) + "\n" + yaml.safe_dump(config).replace("epochs: 1\n", "epochs: *a6\n")
    (tmp_path / "c.yaml").write_text(text)
    err = one_line_error(capsys, "train", "--config", tmp_path / "c.yaml")
    assert "config key 'train.epochs': input should be a valid integer, got [[" in err and len(err) < 400


@pytest.mark.slow  # two training processes
def test_a_ddp_run_reports_a_bad_image_once(tiny_data, tiny_config, tmp_path):
    images = Path(shutil.copytree(tiny_data["train"].parent / "images", tmp_path / "images"))
    shutil.copy(tiny_data["train"], tmp_path / "train.csv")
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0)).tolist()  # DistributedSampler's, seed 0
    broken = images / f"train_{order[1::2][0]:03d}.png"  # rank 1's first image: rank 1 fails, rank 0 reports it
    broken.write_bytes(broken.read_bytes()[:60])
    config = tiny_config({"train": tmp_path / "train.csv", "val": tiny_data["val"]}, tmp_path / "run")
    config["train"].update(devices=2, strategy="ddp", batch_size=8)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "ral.cli", "train", "--config", str(tmp_path / "c.yaml")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith("ral train: error: cannot decode image file") and broken.name in errors[0]


def test_an_error_of_a_loader_worker_is_its_last_line():
    from torch._utils import ExceptionWrapper

    from ral.cli import one_line
    from ral.data import TableError

    try:
        raise TableError("cannot decode image file x.png: image file is truncated [row 3]")
    except TableError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(TableError) as caught:
        wrapped.reraise()
    assert "Traceback" in str(caught.value)
    assert one_line(str(caught.value)) == "cannot decode image file x.png: image file is truncated [row 3]"
    assert one_line("x" * 5000, limit=100) == "x" * 100 + "... (5,000 characters)"


@pytest.mark.slow  # a real pipe: two processes
def test_a_real_pipe_closed_by_head_ends_quietly(tmp_path):
    classes = [f"c{i:04d}" for i in range(2000)]  # more output than a pipe holds
    rows = [f"{i}.png," + ",".join("1" if (i + k) % 3 == 0 else "0" for k in range(2000)) for i in range(20)]
    (tmp_path / "big.csv").write_text("\n".join(["path," + ",".join(classes), *rows]) + "\n")
    script = f"set -o pipefail; {sys.executable} -m ral.cli data stats {tmp_path / 'big.csv'} | head -1"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 141 and done.stderr == "" and done.stdout.startswith("table: ")
