"""Experiment tracking (ral.engine.loggers): the config key, what every run logs, the hidden
third-party notices, and TensorBoard / MLflow / W&B read back through their own APIs."""

from __future__ import annotations

import json
import logging
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml


def test_every_run_logs_config_learning_rate_and_per_class_ap(trained_run: dict[str, Any], classes: list[str]) -> None:
    logs = Path(trained_run["output_dir"]) / "logs"
    hparams = yaml.safe_load((logs / "hparams.yaml").read_text(encoding="utf-8"))
    assert hparams["optimizer.lr"] == 0.01 and hparams["loss.name"] == "bce" and hparams["train.logger"] == "[csv]"
    frame = pd.read_csv(logs / "metrics.csv")
    assert {"lr/decay", "lr/no_decay", "val_mAP", *(f"val_AP/{c}" for c in classes)} <= set(frame.columns)
    assert frame["lr/decay"].dropna().iloc[0] == pytest.approx(0.01)  # the cosine starts at the peak rate
    ap = frame.dropna(subset=["val_mAP"]).iloc[-1]
    assert ap["val_mAP"] == pytest.approx(pd.Series([ap[f"val_AP/{c}"] for c in classes]).mean())
    # epochs are 1-based where ral writes them; per-class values stay out of result.json
    assert trained_run["best_epoch"] == 1 and [row["epoch"] for row in trained_run["history"]] == [1]
    assert not any("/" in key for key in trained_run["val_metrics"])


def test_logger_key_takes_one_name_or_a_list(
    tiny_data: dict[str, Path], tiny_config: Callable[..., dict], tmp_path: Path
) -> None:
    from ral.engine import config_from_dict

    def loggers(value: Any) -> list[str]:
        return config_from_dict(tiny_config(tiny_data, tmp_path, train={"logger": value})).train.logger

    assert loggers("tensorboard") == ["tensorboard"]
    assert loggers(["tensorboard", "mlflow"]) == ["tensorboard", "mlflow"]
    assert config_from_dict(tiny_config(tiny_data, tmp_path)).train.logger == ["csv"]
    with pytest.raises(ValueError, match=r"train\.logger.*'neptune'"):
        loggers("neptune")


def test_missing_tracker_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from ral.engine import loggers

    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"^the mlflow logger needs the mlflow package: pip install 'ral\[mlflow\]'$"):
        loggers.check_tracker("mlflow")
    assert loggers.check_tracker("csv") == "csv"


def test_factory_builds_csv_first_then_each_tracker_once(
    tiny_data: dict[str, Path], tiny_config: Callable[..., dict], tmp_path: Path
) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from ral.engine import config_from_dict
    from ral.engine.loggers import make_loggers

    config = config_from_dict(tiny_config(tiny_data, tmp_path, train={"logger": ["tensorboard", "csv", "tensorboard"]}))
    built = make_loggers(config)
    assert [type(logger) for logger in built] == [CSVLogger, TensorBoardLogger]
    assert Path(built[1].log_dir) == tmp_path / "tensorboard"
    assert not (tmp_path / "tensorboard").exists()  # nothing is written before fitting starts


def test_known_notices_are_hidden_by_their_exact_message_only(caplog: pytest.LogCaptureFixture) -> None:
    from ral.engine.loggers import known_notices_hidden

    def warn(message: str, module: str) -> None:
        warnings.warn_explicit(message, UserWarning, "model_checkpoint.py", 1, module=module)

    notice = "Checkpoint directory /x exists and is not empty."
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        # a handler on the logger itself: whether Lightning lets its records reach the root logger
        # depends on the root's handlers when it was imported
        shown: list[logging.LogRecord] = []
        handler = logging.Handler(logging.INFO)
        handler.emit = shown.append  # type: ignore[method-assign]
        rank_zero.addHandler(handler)
        with known_notices_hidden(), caplog.at_level(logging.INFO, logger=rank_zero.name):
            warn(notice, "lightning.pytorch.callbacks.model_checkpoint")
            warn("Checkpoint directory /x is on fire.", "lightning.pytorch.callbacks.model_checkpoint")
            warn(notice, "somebody.else")  # the same words from another module are shown
            rank_zero.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing ...")
            rank_zero.info("GPU available: False, used: False")
        warn(notice, "lightning.pytorch.callbacks.model_checkpoint")  # the filters end with the block
        rank_zero.removeHandler(handler)
    assert [str(w.message) for w in seen] == ["Checkpoint directory /x is on fire.", notice, notice]
    assert [r.getMessage() for r in shown] == ["GPU available: False, used: False"]


def _csv_series(frame: pd.DataFrame, key: str) -> list[tuple[int, float]]:
    rows = frame.dropna(subset=[key])
    return list(zip(rows["step"].astype(int), rows[key].astype(float), strict=True))


@pytest.mark.slow
def test_tensorboard_and_mlflow_read_back_equal_the_csv_log(
    tiny_data: dict[str, Path], tiny_config: Callable[..., dict], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ral.engine import evaluate, train

    out = tmp_path / "run"
    result = train(tiny_config(tiny_data, out, train={"epochs": 2, "logger": ["tensorboard", "mlflow"]}))
    frame = pd.read_csv(out / "logs" / "metrics.csv")
    keys = ["lr/decay", "lr/no_decay", "val_mAP", "val_AP/Alpha", "train_loss"]
    assert len(_csv_series(frame, "val_mAP")) == 2 and len(_csv_series(frame, "lr/decay")) >= 8

    board = EventAccumulator(str(out / "tensorboard"))
    board.Reload()
    client = MlflowClient(f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ral").experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["optimizer.lr"] == "0.01" and run.data.params["train.logger"] == "[tensorboard, mlflow]"
    for key in keys:
        expected = _csv_series(frame, key)
        read_back = {
            "tensorboard": [(e.step, e.value) for e in board.Scalars(key)],
            "mlflow": sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)),
        }
        for tracker, series in read_back.items():
            assert [step for step, _ in series] == [step for step, _ in expected], (tracker, key)
            assert [v for _, v in series] == pytest.approx([v for _, v in expected], rel=1e-6), (tracker, key)
    assert max(v for _, v in _csv_series(frame, "val_mAP")) == pytest.approx(result["best_score"])

    report = evaluate(result["best_checkpoint"], n_boot=0, device="cpu")  # eval/test: test_mAP ...
    mAP = json.loads((Path(report["out_dir"]) / "metrics.json").read_text(encoding="utf-8"))["mAP"]
    board.Reload()
    assert [e.value for e in board.Scalars("test_mAP")] == pytest.approx([mAP])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "test_mAP")] == pytest.approx([mAP])


def _wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline W&B run file. wandb >= 0.20 reads these only in its Go core,
    so the file's framing (LevelDB's log format: a 7-byte file header, 32 KiB blocks, records of
    crc32 / length / type + data, split across blocks as FIRST .. LAST) is unpacked here."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    position, records, pending = 7, [], b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.mark.slow
def test_wandb_logs_offline_into_the_run_folder(
    tiny_data: dict[str, Path], tiny_config: Callable[..., dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb", reason="W&B is optional: pip install wandb")
    from ral.engine import train

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    result = train(tiny_config(tiny_data, out, train={"logger": "wandb"}))
    (run_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    records = _wandb_records(run_file)
    config = {i.key: json.loads(i.value_json) for r in records if r.HasField("config") for i in r.config.update}
    history = [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.HasField("history")
    ]
    assert config["optimizer.lr"] == 0.01 and config["loss.name"] == "bce"
    val_map = [row["val_mAP"] for row in history if "val_mAP" in row]
    assert val_map == pytest.approx([result["best_score"]])
    assert any("lr/decay" in row for row in history)
