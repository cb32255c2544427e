"""The ``ral`` command. Subcommands only parse arguments and delegate to the package.

Each ``_add_*`` function below registers one group of subcommands; each subcommand (made by
:func:`_add_command`) sets ``func`` to a small ``_run_*`` handler that imports the implementing
module lazily (so ``ral --help`` stays fast and importing the CLI never imports torch-heavy code
it does not need).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]


def _add_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """``ral <name> ...``: a command whose subcommands are registered on the returned object."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def _add_command(sub: argparse._SubParsersAction, name: str, run: Handler) -> argparse.ArgumentParser:
    """A subcommand ``name`` handled by ``run``; its options are added to the returned parser.

    The first paragraph of ``run``'s docstring is the command's one-line help (``ral <group> -h``),
    the rest, if any, its description (``ral <group> <name> -h``).
    """
    help, _, description = (run.__doc__ or "").strip().partition("\n\n")
    parser = sub.add_parser(name, help=" ".join(help.split()), description=" ".join(description.split()) or None)
    parser.set_defaults(func=run)
    return parser


def _print_written(text: str, out: str) -> int:
    print(text)
    print(f"written to {out}")
    return 0


def _add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} (refused without it)")


def _add_outside_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-outside-root", action="store_true", help="accept image paths that lead out of the image root (../)"
    )


def _os_error(exc: OSError) -> str:
    """One line for an OS error: the path and the reason (``exc`` may carry only a message)."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    return f"{exc.filename}: {exc.strerror}"


# --- ral data ... (owned by the data layer) -------------------------------------------------
def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data_sub = _add_group(sub, "data", "simulate datasets and inspect label tables")

    sim = _add_command(data_sub, "simulate", _run_simulate)
    sim.add_argument("--out", help="output folder (required unless only --preview is asked for)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    sim.add_argument("--n-train", type=int, help="training images (default 24000; single 8000; fundus 3000)")
    sim.add_argument("--n-val", type=int, help="validation images (default 4000; single 1500; fundus 800)")
    sim.add_argument("--n-test", type=int, help="test images (default 8000; single 3000; fundus 1200)")
    sim.add_argument(
        "--task",
        choices=["multilabel", "single", "fundus"],
        default="multilabel",
        help="multilabel: 26 CXR-LT chest findings (CXR-LT 2023 layout); single: 7 ISIC-2018-like classes; "
        "fundus: 5 APTOS-2019-like diabetic-retinopathy grades",
    )
    sim.add_argument(
        "--missing-rate",
        type=float,
        default=0.15,
        help="share of positives removed from the TRAINING labels (multilabel; default 0.15)",
    )
    sim.add_argument("--preview", metavar="PNG", help="also write a sample grid (one row per class) to PNG")
    _add_overwrite(sim, "an earlier simulation in --out (its images and tables) and an existing --preview file")

    cache = _add_command(data_sub, "cache", _run_cache)
    cache.add_argument("--config", required=True, help="the run's YAML config (its dataset section decides the caches)")
    cache.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, as for `ral train`")

    stats = _add_command(data_sub, "stats", _run_stats)
    stats.add_argument("table", help="label table (CSV or .csv.gz) or folder-per-class tree")
    stats.add_argument(
        "--format", help="a format of docs/dataset.md: cxrlt, mimic, padchest, vindr, ... (default: detect)"
    )
    stats.add_argument(
        "--uncertain",
        choices=["ignore", "ones", "zeros"],
        default="ignore",
        help="CheXpert / MIMIC-CXR-JPG -1 labels: ignore (NaN, default), ones or zeros",
    )
    stats.add_argument(
        "--task",
        choices=["auto", "multilabel", "single"],
        default="auto",
        help="single: read a generic one-hot table as single-label (default auto: the table decides)",
    )
    stats.add_argument(
        "--view",
        action="append",
        metavar="VIEW",
        help="keep only this view (PA, LATERAL, frontal, lateral...); repeatable",
    )
    stats.add_argument(
        "--split", choices=["train", "validate", "test"], help="MIMIC-CXR-JPG: this part of the official split file"
    )
    stats.add_argument(
        "--vindr-agreement",
        choices=["any", "majority"],
        default="any",
        help="VinDr-CXR: positive if any radiologist (default) or the majority marked it",
    )
    stats.add_argument("--max-classes", type=int, metavar="N", help="keep the N most frequent classes")
    stats.add_argument("--out", help="folder for stats.json, per_class.csv and long_tail.png")
    stats.add_argument("--head-threshold", type=float, help="head if training prevalence >= this (default 0.13)")
    stats.add_argument("--tail-threshold", type=float, help="tail if training prevalence < this (default 0.014)")
    stats.add_argument("--groups", metavar="JSON", help='explicit groups: {"class": "head", ...} or {"head": [...]}')
    stats.add_argument("--groups-from", metavar="TABLE", help="training table whose prevalence defines the groups")
    stats.add_argument("--skip-bad", action="store_true", help="drop bad rows with a warning instead of failing")
    _add_outside_root(stats)
    _add_overwrite(stats, "the files in a non-empty --out")


def _run_simulate(args: argparse.Namespace) -> int:
    """write the embedded simulated long-tailed dataset (train/val/test CSVs + images)

    Generate the simulated dataset (see docs/dataset.md). Same seed and options give byte-identical CSVs and
    images.
    """
    from ral.data.simulate import preview_grid, simulate_dataset
    from ral.report.files import check_output

    if args.out is None and args.preview is None:
        raise ValueError("give --out DIR (the dataset) and/or --preview PNG (the sample grid)")
    if args.preview is not None:  # checked before the simulation (which checks --out first) is written
        check_output(args.preview, overwrite=args.overwrite)
    if args.out is not None:
        sizes = dict(n_train=args.n_train, n_val=args.n_val, n_test=args.n_test)
        settings = dict(seed=args.seed, size=args.size, task=args.task, missing_rate=args.missing_rate)
        out = simulate_dataset(args.out, **sizes, **settings, overwrite=args.overwrite)
        images = "files/" if args.task == "multilabel" else "images/"
        print(f"wrote {out}/train.csv, val.csv, test.csv, dataset.json and {images}")
    if args.preview is not None:
        print(f"wrote {preview_grid(args.preview, task=args.task, size=args.size, seed=args.seed)}")
    return 0


def _run_cache(args: argparse.Namespace) -> int:
    """build the image caches of a run's training and validation tables (once, for every later process)

    Decode the images of the config's dataset.train and dataset.val into dataset.cache_dir with a pool of
    processes, exactly as `ral train` would (same key), so that runs with dataset.cache_must_exist: true on
    a cluster find them. An up-to-date cache is kept.
    """
    from ral.engine import load_config
    from ral.engine.build import build_caches

    for path in build_caches(load_config(args.config, args.overrides)):
        print(f"image cache: {path}")
    return 0


def _run_stats(args: argparse.Namespace) -> int:
    """label statistics of a table: counts, prevalence, patients, studies, views, head/medium/tail groups

    Reads only the label table (no images). Groups come from the prevalence of the table itself, or of
    --groups-from (the training table).
    """
    import json

    from ral.data import load_table
    from ral.data.groups import DEFAULT_HEAD_THRESHOLD, DEFAULT_TAIL_THRESHOLD
    from ral.data.stats import format_stats, table_stats, write_stats
    from ral.report.files import check_output

    if args.out is not None:
        check_output(args.out, folder=True, overwrite=args.overwrite)

    def read(path: str, classes: list[str] | None = None, split: str | None = args.split):
        return load_table(
            path,
            classes=classes,
            format=args.format,
            uncertain=args.uncertain,
            skip_bad=args.skip_bad,
            check_images="none",
            task=args.task,
            views=args.view,
            split=split,
            vindr_agreement=args.vindr_agreement,
            max_classes=args.max_classes if classes is None else None,
            allow_outside_root=args.allow_outside_root,
            hints={"skip_bad": "--skip-bad", "allow_outside_root": "--allow-outside-root"},
        )

    thresholds = None
    if args.head_threshold is not None or args.tail_threshold is not None:
        thresholds = (
            DEFAULT_HEAD_THRESHOLD if args.head_threshold is None else args.head_threshold,
            DEFAULT_TAIL_THRESHOLD if args.tail_threshold is None else args.tail_threshold,
        )
    mapping = None
    if args.groups is not None:
        try:
            with open(args.groups, encoding="utf-8") as fh:
                mapping = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--groups {args.groups}: not valid JSON ({exc})") from exc
    table = read(args.table)
    train_part = "train" if args.split else None  # --groups-from is a training table
    group_table = read(args.groups_from, table.class_names, train_part) if args.groups_from else None
    result = table_stats(table, thresholds=thresholds, mapping=mapping, group_table=group_table)
    print(format_stats(result))
    if args.out is not None:
        paths = write_stats(result, args.out, overwrite=args.overwrite)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# --- ral train / evaluate / predict (owned by the engine) -----------------------------------
def _add_engine_commands(sub: argparse._SubParsersAction) -> None:
    train = _add_command(sub, "train", _run_train)
    train.add_argument("--config", required=True, help="YAML config file (see docs/usage.md)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    run = train.add_mutually_exclusive_group()
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in output_dir from its newest checkpoint (last.ckpt or mid-epoch.ckpt)",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="start the run in output_dir anew, replacing its checkpoints and logs"
    )

    evaluate = _add_command(sub, "evaluate", _run_evaluate)
    evaluate.add_argument("--data", help="table to evaluate (default: the run's dataset.test)")
    evaluate.add_argument("--val-data", help="table for F1 thresholds (default: the run's dataset.val)")
    evaluate.add_argument("--out", help="output folder (default: <run>/eval/<table name>)")
    evaluate.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (0: no intervals)")
    _add_inference_options(evaluate)
    _add_overwrite(evaluate, "the files in a non-empty --out")

    predict = _add_command(sub, "predict", _run_predict)
    predict.add_argument("images", nargs="*", help="image files or folders of images (searched recursively)")
    predict.add_argument(
        "--data", help="a table (any format; label columns are not needed) or a folder of images, instead of IMAGES"
    )
    predict.add_argument("--out", required=True, help="CSV file to write")
    predict.add_argument("--id-column", help="name of the id column (default: dicom_id for CXR-LT, else id)")
    _add_inference_options(predict)
    _add_overwrite(predict, "an existing --out file")


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", help="table format (default: detected from the header)")
    parser.add_argument("--root", help="folder image paths are relative to (default: the table's folder)")


# ral.engine.ensemble.TTA_MODES and ral.engine.aggregate.AGGREGATIONS (not imported: they import torch)
_TTA_MODES = ("none", "hflip")
_AGGREGATIONS = ("none", "study", "view-study")


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="checkpoint written by `ral train`; repeat it for an ensemble (mean of the probabilities)",
    )
    parser.add_argument(
        "--tta", choices=_TTA_MODES, default="none", help="hflip: mean over each image and its horizontal flip"
    )
    parser.add_argument(
        "--aggregate",
        choices=_AGGREGATIONS,
        default="none",
        help="study: every image gets the mean of its study's images; view-study: the mean per view type "
        "(frontal / lateral), then over the study's view types (needs a table with study ids)",
    )
    _add_table_options(parser)
    _add_outside_root(parser)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")


def _inference_arguments(args: argparse.Namespace) -> dict:
    """The keyword arguments of the options of :func:`_add_inference_options`."""
    names = ("format", "root", "allow_outside_root", "tta", "aggregate", "batch_size", "num_workers", "device")
    return {name: getattr(args, name) for name in (*names, "overwrite")}


def _run_train(args: argparse.Namespace) -> int:
    """train a classifier from a YAML config

    Train a classifier. Overrides look like section.key=value, e.g. train.epochs=5 loss.name=asl
    loss.params.gamma_neg=2 (values are parsed as YAML).
    """
    from ral.engine import load_config, train

    result = train(load_config(args.config, args.overrides), resume=args.resume, overwrite=args.overwrite)
    if not result["is_global_zero"]:
        return 0
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in result["val_metrics"].items() if isinstance(v, float))
    print(f"best epoch {result['best_epoch']}: {metrics}")
    print(f"checkpoints: {result['best_checkpoint']}, {result['last_checkpoint']}")
    print(f"seconds per epoch (training only): {result['train_seconds_per_epoch']:.2f}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    """metrics, per-class table, intervals and plots of a checkpoint (or an ensemble)

    With --aggregate, the metrics with and without the aggregation are printed side by side.
    """
    from ral.engine import evaluate
    from ral.metrics import metric_names

    report = evaluate(
        args.checkpoint,
        args.data,
        val_data=args.val_data,
        out_dir=args.out,
        n_boot=args.n_boot,
        **_inference_arguments(args),
    )
    columns = {f"aggregate {report['aggregate']}": report}
    if "without_aggregation" in report:
        columns = {"no aggregation": report["without_aggregation"], **columns}
        print(f"{'':18s} " + "".join(f"{title:32s}" for title in columns).rstrip())
    for name in metric_names(report["task"]):
        cells = []
        for scores in columns.values():
            ci = scores.get("ci95", {})
            interval = f" (95% CI {ci[name][0]:.4f}-{ci[name][1]:.4f})" if name in ci else ""
            cells.append(f"{scores[name]:.4f}{interval}")
        print(f"{name:18s} " + "".join(f"{cell:32s}" for cell in cells).rstrip())
    print(f"written to {report['out_dir']}")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    """class probabilities as a CSV (CXR-LT submission layout)"""
    from ral.engine import predict

    frame = predict(
        args.checkpoint,
        images=args.images,
        data=args.data,
        out=args.out,
        id_column=args.id_column,
        **_inference_arguments(args),
    )
    print(f"wrote {len(frame)} rows x {frame.shape[1] - 1} classes to {args.out}")
    return 0


# --- ral bench ... (owned by the bench layer) -----------------------------------------------
def _add_bench_commands(sub: argparse._SubParsersAction) -> None:
    bench_sub = _add_group(sub, "bench", "loss comparison, sensitivity and speed benchmarks")

    losses = _add_command(bench_sub, "losses", _run_bench_losses)
    _add_bench_data_options(losses, "default")
    losses.add_argument("--seeds", type=int, help="seeds per loss (default: the budget's, 5; quick: 1)")
    losses.add_argument(
        "--losses",
        nargs="+",
        metavar="NAME",
        help="labels of the default list (bce ... ral, ral_cb, ral_cb_both, ral_prior) or registry names",
    )
    _add_shard_option(losses)

    sensitivity = _add_command(bench_sub, "sensitivity", _run_bench_sensitivity)
    _add_bench_data_options(sensitivity, "grid")
    sensitivity.add_argument(
        "--loss",
        nargs="+",
        metavar="NAME",
        help="arms to sweep (default: asl asl_hill apl ral, the matched comparisons of the Hill weight) or "
        "losses with a grid (focal, hill, cb, db, ...; see docs/results.md)",
    )
    sensitivity.add_argument(
        "--grid",
        nargs="+",
        metavar="PARAM=V1,V2",
        default=[],
        help="replace or add a parameter's values, e.g. gamma_neg=1,2,4 (one --loss only)",
    )
    sensitivity.add_argument("--seed", type=int, default=0, help="first training seed (default 0)")
    _add_sensitivity_options(sensitivity)
    _add_shard_option(sensitivity)
    _add_bench_report_command(bench_sub)

    step = _add_command(bench_sub, "step", _run_bench_step)
    step.add_argument(
        "--losses",
        nargs="+",
        default=["bce", "ral"],
        metavar="NAME",
        help="registry names; the first is the reference (default: bce ral)",
    )
    step.add_argument("--batch-size", type=int, default=64)
    step.add_argument("--image-size", type=int, default=64)
    step.add_argument("--backbone", default="tiny")
    step.add_argument("--steps", type=int, default=10, help="steps per timed block")
    step.add_argument("--repeats", type=int, default=15, help="interleaved rounds")
    step.add_argument("--out", help="folder for step_time.csv / step_time.md")
    _add_overwrite(step, "the files in a non-empty --out")
    _add_threads_option(step)
    _add_bench_speed_command(bench_sub)
    _add_bench_throughput_command(bench_sub)


def _add_bench_throughput_command(bench_sub: argparse._SubParsersAction) -> None:
    """`ral bench throughput`: images/s of ral's training step against a plain PyTorch loop.

    Options left out take the defaults of :class:`ral.bench.throughput.ThroughputConfig` (not
    imported here: it needs torch).
    """
    throughput = _add_command(bench_sub, "throughput", _run_bench_throughput)
    throughput.add_argument("--backbone", help="default resnet18")
    throughput.add_argument("--image-size", type=int, help="default 64")
    throughput.add_argument("--batch-size", type=int, help="default 32")
    throughput.add_argument("--channels", type=int, choices=(1, 3), help="default 1")
    throughput.add_argument("--augment", choices=("none", "light", "cxr"), help="augmentation preset (default light)")
    throughput.add_argument("--loss", help="registry name (default ral)")
    throughput.add_argument("--precision", choices=("32", "16-mixed", "bf16-mixed"), help="default 32")
    throughput.add_argument("--device", choices=("cpu", "cuda"), help="default cpu")
    throughput.add_argument("--num-workers", type=int, help="loader workers of both loops (default 0)")
    throughput.add_argument("--rounds", type=int, help="interleaved rounds (default 15; quick 6)")
    throughput.add_argument("--steps", type=int, help="timed steps per round and loop (default 5; quick 3)")
    throughput.add_argument("--warmup", type=int, help="untimed steps before the first round (default 3; quick 2)")
    throughput.add_argument("--quick", action="store_true", help="fewer rounds: under 2 minutes on 2 CPU cores")
    throughput.add_argument("--out", default="runs/bench/throughput", help="output folder")
    throughput.add_argument(
        "--data-dir",
        default="runs/bench/throughput-data",
        help="where the simulated images are kept for later measurements",
    )
    _add_overwrite(throughput, "the files in a non-empty --out")
    throughput.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default 0 = torch default: all cores)"
    )


def _run_bench_throughput(args: argparse.Namespace) -> int:
    """images/s of ral train's full training step against a plain PyTorch loop (same model, data, precision)

    Time ral's real data path (cache, loader, augmentation, normalisation on the device, Lightning module,
    callbacks, logging) and a plain PyTorch loop in one process, in interleaved rounds; writes
    throughput.json (pipeline_images_per_s, plain_images_per_s, ratio, loss_share), throughput.csv and
    throughput.md to --out.
    """
    from ral.bench.throughput import QUICK, ThroughputConfig, run_throughput

    _set_threads(args.threads)
    names = ("backbone", "image_size", "batch_size", "channels", "augment", "loss", "precision", "device")
    names += ("num_workers", "rounds", "steps", "warmup")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    config = ThroughputConfig(**({**QUICK, **given} if args.quick else given))
    command = "ral " + " ".join(sys.argv[1:])
    _, text = run_throughput(config, args.out, data_dir=args.data_dir, command=command, overwrite=args.overwrite)
    return _print_written(text, args.out)


def _add_shard_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the runs i with i %% N == I - 1 (e.g. 1/2 and 2/2 in two processes sharing --out); "
        "the process finishing the last run writes the summary",
    )


def _add_sensitivity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        help="seeds per grid point, the same for every arm (default: the budget's, 5; quick: 1)",
    )
    parser.add_argument(
        "--missing-rate",
        type=float,
        nargs="+",
        metavar="R",
        help="simulated multi-label set: share of training positives hidden, one dataset per rate "
        "(default 0 0.15 0.3 0.5; quick: 0.15)",
    )


def _add_bench_report_command(bench_sub: argparse._SubParsersAction) -> None:
    """`ral bench report`: docs/results.md from the bench folders."""
    report = _add_command(bench_sub, "report", _run_bench_report)
    report.add_argument(
        "--runs",
        default="runs/bench",
        help="folder holding the bench output folders under their default names (default runs/bench)",
    )
    report.add_argument("--out", default="docs/results.md", help="the document to write (default docs/results.md)")
    report.add_argument(
        "--img",
        help="folder for the figures, owned by the report (default: img/results/ beside --out)",
    )


def _run_bench_report(args: argparse.Namespace) -> int:
    """rebuild docs/results.md (tables, figures, verdicts) from the bench output folders

    Read the folders of the full evidence (losses per task, sensitivity, step time, speed, throughput and the quick
    smoke run) under --runs, recompute every table from their runs, re-draw the figures into --img and write
    --out with the command beside each table and a verdict per claim from the rules in the code.
    """
    from ral.bench.report import write_results

    path, shown = write_results(args.runs, args.out, img_dir=args.img)
    for line in shown:
        print(line)
    print(f"written to {path}")
    return 0


def _add_bench_speed_command(bench_sub: argparse._SubParsersAction) -> None:
    """`ral bench speed`: forward+backward time and peak memory of losses against BCE."""
    speed = _add_command(bench_sub, "speed", _run_bench_speed)
    speed.add_argument(
        "--shapes", nargs="+", metavar="NxC", help="batch x classes (default: 256x26 1024x26 4096x1000 16384x26)"
    )
    speed.add_argument(
        "--losses",
        nargs="+",
        metavar="NAME",
        help="ral ral_eager asl_reference or registry names (default: ral "
        "ral_eager asl_reference asl focal); bce is always measured",
    )
    speed.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    speed.add_argument("--repeats", type=int, default=10, help="timed passes per loss and round (default 10)")
    speed.add_argument("--warmup", type=int, default=3, help="untimed passes before each timing (default 3)")
    speed.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall-clock or process CPU time (cpu: steadier on a shared machine)",
    )
    speed.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    speed.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    speed.add_argument(
        "--breakdown", action="store_true", help="also time RAL's parts (validation, forward, backward) at each shape"
    )
    speed.add_argument(
        "--profile", action="store_true", help="also print torch.profiler's operator table of RAL at each shape"
    )
    speed.add_argument("--out", default="runs/bench/speed", help="output folder (default runs/bench/speed)")
    _add_overwrite(speed, "the files in a non-empty --out")
    speed.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default 0 = torch default; the targets are for the default)",
    )


def _run_bench_speed(args: argparse.Namespace) -> int:
    """forward+backward time and peak memory of RAL (compiled and eager), ASL, focal vs BCE

    Time forward+backward of each loss on random logits in one process (interleaved rounds, median paired ratio
    to BCEWithLogitsLoss) and measure its peak memory; prints a table and writes speed.csv, speed_summary.csv
    and speed.md to --out.
    """
    from ral.bench.speed import DEFAULT_LOSSES, SpeedConfig, run_speed, shapes_from_text

    _set_threads(args.threads)
    config = SpeedConfig(
        shapes=shapes_from_text(args.shapes),
        losses=tuple(args.losses or DEFAULT_LOSSES),
        rounds=args.rounds,
        repeats=args.repeats,
        warmup=args.warmup,
        clock=args.clock,
        memory=not args.no_memory,
        device=args.device,
    )
    command = "ral " + " ".join(sys.argv[1:])
    _, text = run_speed(config, args.out, command=command, overwrite=args.overwrite)
    print(text)
    if args.breakdown:
        from ral.bench.speed import breakdown_report

        print(breakdown_report(config, args.out))
    if args.profile:
        from ral.bench.speed import profile_ral

        for shape in config.shapes:
            print(profile_ral(shape, config))
    print(f"written to {args.out}")
    return 0


def _add_bench_data_options(parser: argparse.ArgumentParser, default_budget: str) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        help="training table (any format of `ral data`); split by patient "
        "80/10/10 unless --val-data and --test-data are given",
    )
    source.add_argument("--simulate", action="store_true", help="use the embedded simulated dataset")
    parser.add_argument("--val-data", help="validation table (checkpoint selection, F1 thresholds)")
    parser.add_argument("--test-data", help="test table (the reported metrics)")
    _add_table_options(parser)
    parser.add_argument(
        "--task",
        choices=("multilabel", "single", "fundus"),
        help="with --simulate: which simulated set (default multilabel; single: ISIC-like, fundus: APTOS-like "
        "grades, single-label); with --data: checked (multilabel or single)",
    )
    parser.add_argument(
        "--budget",
        default=default_budget,
        help=f"quick, grid, default or long (default: {default_budget}; see docs/results.md)",
    )
    parser.add_argument("--quick", action="store_true", help="same as --budget quick (a smoke run of about a minute)")
    parser.add_argument("--epochs", type=int, help="override the budget's epochs")
    parser.add_argument("--image-size", type=int, help="override the budget's image size")
    parser.add_argument("--batch-size", type=int, help="override the budget's batch size")
    parser.add_argument("--backbone", help="override the budget's backbone (default: tiny)")
    parser.add_argument("--out", help="output folder (default: runs/bench/<command>-<task>-<budget>)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard the benchmark in --out and start again (without it, the same settings resume it and "
        "other settings are refused)",
    )
    _add_threads_option(parser)


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: small models gain little from more, and on a "
        "shared machine extra threads can make training many times slower; 0 = torch default)",
    )


def _set_threads(threads: int) -> None:
    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _bench_setup(args: argparse.Namespace, command: str):
    """Budget (with overrides), output folder, and the keyword arguments every training benchmark
    takes: the data, the shard, the command line to record and ``overwrite``."""
    from ral.bench.experiment import budget_with, get_budget
    from ral.bench.parallel import RunOptions, Shard

    _set_threads(args.threads)
    budget = budget_with(
        get_budget("quick" if args.quick else args.budget),
        epochs=args.epochs,
        image_size=args.image_size,
        batch_size=args.batch_size,
        backbone=args.backbone,
    )
    task = args.task or ("multilabel" if args.simulate else "data")
    out = args.out or f"runs/bench/{command}-{task}-{budget.name}"
    data_args = {
        name: getattr(args, name) for name in ("data", "simulate", "task", "val_data", "test_data", "format", "root")
    }
    line = _without_shard("ral " + " ".join(sys.argv[1:]))
    run = RunOptions(shard=Shard.parse(args.shard), command=line, overwrite=args.overwrite)
    return budget, out, {**data_args, "run": run}


def _run_bench_losses(args: argparse.Namespace) -> int:
    """train every loss with the same backbone and schedule, several seeds (resumable)

    Compare losses at equal budget: results.csv, summary.md (mean ± std over seeds, paired differences against RAL
    with t intervals, the long-tail variants), metrics.png, per_class.png in --out. Re-running the same command
    resumes: finished runs are kept; --shard splits the runs over processes.
    """
    from ral.bench.losses import benchmark_losses

    budget, out, common = _bench_setup(args, "losses")
    return _print_written(benchmark_losses(out, budget, seeds=args.seeds, losses=args.losses, **common), out)


def _run_bench_sensitivity(args: argparse.Namespace) -> int:
    """grid over the losses' hyper-parameters with seeds and missing rates, the Hill weight isolated (claim 2)

    Train each arm (a loss and a grid of its parameters) at every grid point with the same seeds, on one simulated
    set per missing rate; report mean, std, range and worst value of the test metric over the grid with bootstrap
    intervals over seeds, the matched comparisons ASL vs ASL+Hill and APL vs RAL, a verdict per missing rate, and
    heat maps. Resumable; --shard splits the runs over processes.
    """
    from ral.bench.sensitivity import DEFAULT_ARMS, benchmark_sensitivity

    budget, out, common = _bench_setup(args, "sensitivity")
    arms = dict(losses=args.loss or DEFAULT_ARMS, grid_overrides=args.grid)
    text = benchmark_sensitivity(
        out, budget, seed=args.seed, seeds=args.seeds, missing_rate=args.missing_rate, **arms, **common
    )
    return _print_written(text, out)


def _without_shard(command: str) -> str:
    """The command line without its ``--shard I/N`` (the summary's command is the whole benchmark)."""
    import re

    return re.sub(r"\s--shard(=|\s+)\S+", "", command)


def _run_bench_step(args: argparse.Namespace) -> int:
    """full training-step time of losses against BCE on the demo model (claim 3)

    Forward + loss + backward + AdamW step of the tiny CNN on a fixed batch, losses timed in interleaved rounds
    in one process; reports the median paired time ratio against the first loss.
    """
    from ral.bench.step_time import StepTimeConfig, run_step_time

    _set_threads(args.threads)
    batch = dict(batch_size=args.batch_size, image_size=args.image_size, steps=args.steps, rounds=args.repeats)
    config = StepTimeConfig(losses=tuple(args.losses), model=args.backbone, **batch)
    _, text = run_step_time(config, args.out, overwrite=args.overwrite)
    print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ral",
        description="Robust Asymmetric Loss toolkit for multi-label, long-tailed medical images.",
    )
    from ral import __version__

    parser.add_argument("--version", action="version", version=f"ral {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_engine_commands(sub)
    _add_bench_commands(sub)
    return parser


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """One line per warning: ral's own show their message, others also their category and origin."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        return f"ral: warning: {message}\n"
    return f"warning: {category.__name__} ({Path(filename).name}:{lineno}): {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except ValueError as exc:  # bad input: one clear line, no traceback
        print(f"ral {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing file, an unwritable output, a full disk: the path and the reason
        print(f"ral {args.command}: error: {_os_error(exc)}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
