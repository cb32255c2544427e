"""``make demo``: simulate the embedded dataset, train the tiny CNN with BCE, ASL and RAL, compare.

    python -m ral.demo --out runs/demo

1. Simulates the embedded long-tailed chest-radiograph set (``ral.data.simulate_dataset``
   with :data:`DEMO_DATA`'s sizes) into ``--data-dir``, unless it is already there with the
   same settings and generator code (``ral.data.simulate.ensure_simulated``).
2. Trains the same tiny CNN with the same seed and schedule once per loss (``ral train``
   with :data:`DEMO_CONFIG`, the content of configs/demo.yaml). A finished run is reused and
   an interrupted one resumed when the command is repeated.
3. Evaluates each on the test split (F1 thresholds tuned on val) and prints one table of
   mAP, mAUC, mF1, head / medium / tail mAP and training seconds per epoch, also written to
   ``<out>/summary.md`` and ``<out>/summary.csv``, and the mAP difference of each loss to the
   one before it with a paired bootstrap interval (the same resampled test images for both).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ral.engine import Config

DEMO_LOSSES = ("bce", "asl", "ral")
#: The demo's simulated set: the default generator at fewer images (the default set has 24,000 / 4,000 / 8,000).
DEMO_DATA: dict[str, int] = {"n_train": 12000, "n_val": 2000, "n_test": 4000}

# Keep in sync with configs/demo.yaml (a test checks that they agree).
DEMO_CONFIG: dict[str, Any] = {
    "seed": 0,
    "output_dir": "runs/demo/ral",
    "dataset": {
        "train": "data/simulated/train.csv",
        "val": "data/simulated/val.csv",
        "test": "data/simulated/test.csv",
        "image_size": 64,
        "augment": False,
        "cache_dir": "data/simulated/cache",
        "num_workers": 0,
    },
    "model": {"backbone": "tiny", "options": {"width": 16, "depth": 4}},
    "loss": {"name": "ral", "params": {}},
    "optimizer": {"name": "adamw", "lr": 3.0e-3, "weight_decay": 1.0e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 0.2, "min_lr_ratio": 0.0},
    "train": {
        "epochs": 3,
        "batch_size": 64,
        "accelerator": "cpu",
        "devices": 1,
        "precision": "32",
        "progress_bar": False,
    },
}


def ensure_dataset(data_dir: Path, seed: int = 0) -> Path:
    """The default simulated dataset in ``data_dir`` (:func:`ral.data.simulate.ensure_simulated`:
    reused when its dataset.json records the same settings and generator code). Returns ``data_dir``."""
    from ral.data import simulate

    start = time.perf_counter()
    simulate.ensure_simulated(data_dir, seed=seed, log=lambda line: print(f"[demo] {line}", flush=True), **DEMO_DATA)
    print(f"[demo] dataset ready in {time.perf_counter() - start:.0f} s", flush=True)
    return data_dir


def run_config(loss: str, data_dir: Path, out: Path, epochs: int | None) -> Config:
    """:data:`DEMO_CONFIG` for one loss, with the data and output folders filled in."""
    from ral.engine import config_from_dict

    raw = copy.deepcopy(DEMO_CONFIG)
    raw["output_dir"] = str(out / loss)
    for split in ("train", "val", "test"):
        raw["dataset"][split] = str(data_dir / f"{split}.csv")
    raw["dataset"]["cache_dir"] = str(data_dir / "cache")
    raw["loss"] = {"name": loss, "params": {}}
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    return config_from_dict(raw)


def train_or_reuse(config: Config, data_dir: Path) -> dict[str, Any]:
    """Train one run; reuse it if finished with the same config and data, resume it if interrupted.

    The data's ``dataset.json`` is copied into the run folder, so a run made on another
    simulation of the data is refused instead of reused.
    """
    from ral.engine import dump_yaml, train
    from ral.engine.build import absolute_paths
    from ral.report import write_text

    out = Path(config.output_dir)
    resolved = dump_yaml(absolute_paths(config))
    stored = out / "config.yaml"
    info = data_dir / "dataset.json"
    data_info = info.read_text(encoding="utf-8") if info.is_file() else ""
    stored_info = out / "dataset.json"
    if stored.is_file() and (
        stored.read_text(encoding="utf-8") != resolved
        or (stored_info.read_text(encoding="utf-8") if stored_info.is_file() else "") != data_info
    ):
        raise ValueError(f"{out} holds a run made with another config or dataset; delete it or pass another --out")
    write_text(data_info, stored_info)
    if (out / "result.json").is_file():
        print(f"[demo] {out.name}: finished run found, reusing it")
        return json.loads((out / "result.json").read_text(encoding="utf-8"))
    print(f"[demo] training with loss {config.loss.name!r} -> {out}", flush=True)
    return train(config, resume=stored.is_file())


def paired_differences(eval_dirs: dict[str, Path], config: Config, n_boot: int) -> list[dict[str, Any]]:
    """Test mAP of each loss minus that of the loss before it, with a 95% paired bootstrap interval.

    Both runs' predictions (``predictions.csv`` of their evaluation) are scored on the same
    resampled test images, so the images' shared difficulty cancels out of the interval.
    """
    import pandas as pd

    from ral.data import load_table
    from ral.metrics import bootstrap_ci, multilabel_metrics

    probs = {loss: pd.read_csv(folder / "predictions.csv").iloc[:, 1:] for loss, folder in eval_dirs.items()}
    classes = list(next(iter(probs.values())).columns)
    truth = load_table(config.dataset.test, config.dataset, classes=classes, check_images="none").labels
    rows, losses = [], list(probs)
    for before, after in zip(losses, losses[1:]):
        a, b = probs[after].to_numpy(), probs[before].to_numpy()
        gain = multilabel_metrics(truth, a)["mAP"] - multilabel_metrics(truth, b)["mAP"]
        low, high = bootstrap_ci(truth, a, metric_names=["mAP"], n_boot=n_boot, baseline=b)["mAP"]
        rows.append({"comparison": f"{after} - {before}", "mAP difference": gain, "ci95": f"{low:+.4f} to {high:+.4f}"})
        rows[-1]["holds"] = "yes" if low > 0 else "no"
    return rows


def summary_table(rows: list[dict[str, Any]]):
    """pandas DataFrame: one row per loss, the headline metrics and seconds per epoch."""
    import pandas as pd

    return pd.DataFrame(rows).set_index("loss")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ral.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--data-dir", default="data/simulated", help="simulated dataset folder")
    parser.add_argument("--epochs", type=int, help=f"epochs per run (default {DEMO_CONFIG['train']['epochs']})")
    parser.add_argument("--losses", nargs="+", default=list(DEMO_LOSSES), help="losses to compare")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the test metrics")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default 0: torch's default, every core; on a machine other jobs share, "
        "1 thread keeps this small CNN from slowing down many times)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")

    import pandas as pd
    import torch

    from ral.engine import evaluate
    from ral.metrics import metric_names
    from ral.report import markdown_table, plot_metric_bars, write_csv, write_text

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no GPU/TPU banners
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")  # Lightning vs torch
    start = time.perf_counter()
    metrics = metric_names("multilabel")
    out, data_dir = Path(args.out), Path(args.data_dir)
    try:
        ensure_dataset(data_dir)
        rows, eval_dirs, intervals = [], {}, []
        for loss in args.losses:
            config = run_config(loss, data_dir, out, args.epochs)
            result = train_or_reuse(config, data_dir)
            report = evaluate(
                result["best_checkpoint"],
                config.dataset.test,
                val_data=config.dataset.val,
                out_dir=out / loss / "eval",
                overwrite=True,  # re-running the demo re-evaluates
                n_boot=args.n_boot,
                device="cpu",
                cache_dir=config.dataset.cache_dir,
            )
            row = {
                "loss": loss,
                **{m: report[m] for m in metrics},
                "mAP_ci95": "{:.3f}-{:.3f}".format(*report["ci95"]["mAP"]) if "ci95" in report else "n/a",
                "s/epoch": result["train_seconds_per_epoch"],
                "cpu s/epoch": result.get("train_cpu_seconds_per_epoch", float("nan")),
                "best_epoch": result["best_epoch"],
            }
            rows.append(row)
            intervals.append(report.get("ci95", {}))
            eval_dirs[loss] = Path(report["out_dir"])
            print(f"[demo] {loss}: test mAP {row['mAP']:.4f}  ({report['out_dir']})", flush=True)
        differences = paired_differences(eval_dirs, config, args.n_boot) if args.n_boot > 0 else []
    except (ValueError, FileNotFoundError) as exc:
        print(f"ral demo: error: {exc}", file=sys.stderr)
        return 2

    table = summary_table(rows)
    epochs = args.epochs or DEMO_CONFIG["train"]["epochs"]
    shown = table.reset_index()
    for column in ("s/epoch", "cpu s/epoch"):  # seconds: one decimal is all the precision they have
        shown[column] = shown[column].map(lambda v: f"{v:.1f}")
    text = markdown_table(shown, floatfmt=".4f")
    if differences:
        text += "\n\nPaired differences of test mAP (95% bootstrap interval over the same test images):\n\n"
        text += markdown_table(pd.DataFrame(differences), floatfmt="+.4f")
    write_csv(table.reset_index(), out / "summary.csv")
    shown_ci = {m: [ci[m] for ci in intervals] for m in metrics if all(m in ci for ci in intervals)}
    plot_metric_bars(
        table[list(metrics)],
        out / "metrics.png",
        title=f"Test metrics of the demo runs ({', '.join(args.losses)}; one seed; error bars: bootstrap 95% CI)"
        if shown_ci
        else f"Test metrics of the demo runs ({', '.join(args.losses)}; one seed)",
        intervals=shown_ci,
    )
    elapsed = time.perf_counter() - start
    details = (
        f"Tiny CNN ({DEMO_CONFIG['model']['options']}), {epochs} epochs, {torch.get_num_threads()} CPU thread(s), "
        f"seed {DEMO_CONFIG['seed']}, "
        f"AdamW lr {DEMO_CONFIG['optimizer']['lr']}, cosine schedule, batch {DEMO_CONFIG['train']['batch_size']}; "
        f"simulated data in {data_dir}. Test metrics with F1 thresholds tuned on val; mAP_ci95 is a bootstrap "
        f"95% interval ({args.n_boot} resamples); s/epoch (wall clock) and cpu s/epoch (CPU time of the "
        f"process) are the training loop without validation; wall-clock times grow when other jobs share "
        f"the machine, CPU times much less. "
        f"Produced by `python -m ral.demo --out {out}` in {elapsed:.0f} s (data simulation and image "
        f"cache included when they had to be made)."
    )
    write_text(f"# ral demo: BCE vs ASL vs RAL\n\n{text}\n\n{details}\n", out / "summary.md")
    print("\n" + text + "\n")
    print(details)
    print(
        f"\nper-run metrics, per-class tables and plots: {out}/<loss>/eval/ "
        "(report.html, metrics.json, per_class.csv, ap_vs_frequency.png, pr_tail.png)"
    )
    print(f"summary: {out / 'summary.md'}, {out / 'summary.csv'}, {out / 'metrics.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
