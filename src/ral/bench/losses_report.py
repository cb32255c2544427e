"""Tables, figures and verdicts of a loss comparison (``ral bench losses``), from its result rows.

Used twice: by ``ral bench losses`` for the folder's ``summary.md`` and by ``ral bench report`` for
docs/results.md, so both always show the same numbers. Every verdict is a rule applied to paired
differences over seeds (``ral.bench.summary``: Student t interval at 95 %):

- *claim 1* (RAL at least as accurate as its peers), per task, against the peers (the rows that are
  not RAL or a variant of it, :data:`RAL_LOSSES`): "shown" when RAL's headline metric is higher than
  every peer's (interval above 0), "consistent" when no peer is higher but some are level (interval
  holds 0), "not supported" when some peer is higher (interval below 0); "where RAL does not win"
  lists, for every metric, the peers higher than RAL by their interval, and the peers with a higher
  mean that the interval cannot separate.
- *variants* (:data:`COMPARISONS`): "exceeds / reaches / falls short of" (``reach``), "keeps / loses"
  (``keep``) by the interval's direction; options to decide (``default``) by the project's rule for
  defaults (:func:`ral.bench.summary.beats_default`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ral.bench.summary import beats_default, mean_std_table, paired_differences, summarize
from ral.metrics import headline_metric, metric_names

#: The RAL row every other loss is paired against, per task.
REFERENCE = {"multilabel": "ral", "single": "ral_single"}
#: Registry names of RAL and its variants: rows of these losses are RAL, not its peers, in claim 1.
RAL_LOSSES = ("ral", "ral_cb", "ral_single", "ral_la")
#: Claim 1's rule in words (docs/results.md shows it above the tables).
CLAIM1_RULE = (
    "Verdict rule (`ral.bench.losses_report`): **shown** when RAL's headline metric (mAP; single-label: balanced "
    "accuracy) is higher than every peer's, i.e. the 95% t interval of the paired difference over seeds lies above "
    "0 for every peer; **consistent with the claim, not shown** when no peer is higher but some are level (interval "
    "holds 0); **not supported** when some peer is higher (interval below 0). Peers: the losses that are not RAL or "
    "one of its variants (`ral_cb`, `ral_la`, `ral_prior`, ...). *Where RAL does not win* lists, per metric, the "
    "peers above RAL.\n\n"
)
#: Per-class score column of each task's per-class table.
SCORE_NAME = {"multilabel": "AP", "single": "accuracy"}


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two rows of the loss table and the rules that turn it into answers.

    Attributes:
        candidate, baseline: row labels (candidate minus baseline, paired by seed).
        metrics: the metrics shown.
        checks: ``(rule, metrics the rule reads, question)`` triples; rule "reach" (does the candidate
            reach the baseline?), "keep" (does it keep the baseline's level?), "help" (is it higher than
            the baseline by its interval?) or "default" (does it beat the baseline, the current
            default, by the project's rule?).
    """

    candidate: str
    baseline: str
    metrics: tuple[str, ...]
    checks: tuple[tuple[str, tuple[str, ...], str], ...]


_GROUPS_ML = ("mAP", "head_mAP", "medium_mAP", "tail_mAP")
_GROUPS_SL = ("balanced_accuracy", "accuracy", "head_acc", "medium_acc", "tail_acc")

#: The questions about the long-tail variants of RAL (rows of the default loss lists).
COMPARISONS: dict[str, tuple[Comparison, ...]] = {
    "multilabel": (
        Comparison(
            "ral_cb",
            "cb_focal",
            _GROUPS_ML,
            (("reach", ("tail_mAP",), "Does class-balanced RAL reach the class-balanced focal loss on the tail?"),),
        ),
        Comparison(
            "ral_cb",
            "ral",
            _GROUPS_ML,
            (("keep", ("head_mAP", "medium_mAP"), "Does class-balanced RAL keep RAL's head and medium mAP?"),),
        ),
        Comparison(
            "ral_cb_both",
            "ral_cb",
            _GROUPS_ML,
            (
                (
                    "default",
                    ("mAP",),
                    "`ral_cb`'s `balance`: should the weight apply to both terms (`both`) instead of the "
                    "positive term only (`positive`, the default)?",
                ),
            ),
        ),
        Comparison(
            "ral_prior",
            "ral",
            _GROUPS_ML,
            (
                ("help", ("tail_mAP",), "Does RAL's prior correction (`prior_tau=1`) help the tail?"),
                ("default", ("mAP",), "Should RAL's prior correction be on by default?"),
            ),
        ),
    ),
    "single": (
        Comparison(
            "ral_la",
            "logit_adjusted",
            _GROUPS_SL,
            (
                (
                    "reach",
                    ("balanced_accuracy",),
                    "Does logit-adjusted RAL reach logit-adjusted CE on balanced accuracy?",
                ),
            ),
        ),
        Comparison(
            "ral_la",
            "ral_single",
            _GROUPS_SL,
            (
                (
                    "default",
                    ("balanced_accuracy",),
                    "Should a user start with logit-adjusted RAL instead of single-label RAL?",
                ),
            ),
        ),
    ),
}

#: Variants that replace the reference as the loss to start with when they beat it by the project's rule.
VARIANTS = {"multilabel": ("ral_cb", "ral_cb_both", "ral_prior"), "single": ("ral_la",)}


def _signed(value: float, digits: int = 4) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.{digits}f}"


def _interval(low: float, high: float, digits: int = 4) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "n/a"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def summary_frame(results: pd.DataFrame, task: str) -> pd.DataFrame:
    """Mean and sample std over seeds of every metric and of the seconds per epoch, per loss."""
    return summarize(results, [*metric_names(task), "seconds_per_epoch"])


def summary_markdown(results: pd.DataFrame, task: str) -> str:
    """The mean ± std table (best mean of each metric in bold)."""
    from ral.report import markdown_table

    metrics = metric_names(task)
    table = mean_std_table(
        summary_frame(results, task),
        [*metrics, "seconds_per_epoch"],
        digits=[3] * len(metrics) + [1],
        best=metrics,
    )
    return markdown_table(table)


def paired_frame(
    results: pd.DataFrame, task: str, metric: str | None = None, *, peers_only: bool = False
) -> pd.DataFrame:
    """The reference RAL row minus every other loss (``peers_only``: every loss that is not RAL or one of
    its variants, :data:`RAL_LOSSES`) on ``metric`` (default: the headline), paired by seed; empty when
    the reference is absent or has no one to compare with."""
    reference = REFERENCE[task]
    others = [label for label in pd.unique(results["loss"]) if label != reference]
    if peers_only:
        ral_rows = set(results.loc[results["loss_name"].isin(RAL_LOSSES), "loss"])
        others = [label for label in others if label not in ral_rows]
    if reference not in set(results["loss"]) or not others:
        return pd.DataFrame()
    return paired_differences(results, metric or headline_metric(task), reference, others=others)


def _paired_markdown(diffs: pd.DataFrame, first: str, winner: str) -> str:
    from ral.report import markdown_table

    shown = pd.DataFrame(
        {
            first: diffs.iloc[:, 0],
            "pairs": diffs["pairs"],
            "mean diff": diffs["mean_diff"].map(_signed),
            "95% t interval": [_interval(a, b) for a, b in zip(diffs["ci_low"], diffs["ci_high"])],
            "min": diffs["min_diff"].map(_signed),
            "max": diffs["max_diff"].map(_signed),
            f"seeds where {winner} is higher": diffs["wins"],
            f"{winner} is": diffs["verdict"],
        }
    )
    return markdown_table(shown)


def paired_markdown(results: pd.DataFrame, task: str) -> str:
    """Markdown: the paired-difference table against the reference, with its explanation; "" without one."""
    diffs = paired_frame(results, task)
    if diffs.empty:
        return ""
    reference, metric = REFERENCE[task], headline_metric(task)
    return (
        f"Paired by seed (same seed = same initialisation and batch order): `{reference}` {metric} minus each "
        f"other loss's {metric}; 95% Student t interval of the mean difference over seeds; `{reference}` is "
        "higher / lower when the interval lies above / below 0, level when it holds 0.\n\n"
        + _paired_markdown(diffs, "loss", reference)
    )


def claim1_verdict(results: pd.DataFrame, task: str) -> str:
    """Claim 1 for one task, by the rule of this module's docstring, as markdown text."""
    reference, metric = REFERENCE[task], headline_metric(task)
    diffs = paired_frame(results, task, peers_only=True)
    if diffs.empty:
        return f"**Verdict: not tested** (`{reference}` and at least one peer are needed).\n"
    seeds = int(diffs["pairs"].min())
    if seeds < 2:
        return f"**Verdict: not tested** — one seed gives no interval ({metric} of one run per loss only).\n"
    below = diffs[diffs["verdict"] == "lower"]["loss"].tolist()
    level = diffs[diffs["verdict"] == "level"]["loss"].tolist()
    above = diffs[diffs["verdict"] == "higher"]
    if below:
        head = f"**Verdict: not supported** — {_names(below)} {_be(below)} higher than `{reference}` on {metric}"
    elif level:
        head = (
            f"**Verdict: consistent with the claim, not shown** — no peer is higher than `{reference}` on {metric}, "
            f"but {_names(level)} {_be(level)} level with it (the interval holds 0)"
        )
    else:
        head = f"**Verdict: shown** — `{reference}` is higher than every peer on {metric}"
    strength = f" ({seeds} paired seeds"
    if len(above):
        closest = above.loc[above["ci_low"].idxmin()]
        strength += f"; smallest lower bound of a win: {closest['ci_low']:+.4f} against `{closest['loss']}`"
    strength += ").\n\n"
    return head + strength + _not_winning(results, task) + "\n"


def _names(labels: Sequence[str]) -> str:
    return ", ".join(f"`{label}`" for label in labels)


def _be(labels: Sequence[str]) -> str:
    return "is" if len(labels) == 1 else "are"


def _not_winning(results: pd.DataFrame, task: str) -> str:
    """Where the reference does not win: per metric, the peers higher by their interval or by their mean."""
    reference = REFERENCE[task]
    lines = []
    for metric in metric_names(task):
        diffs = paired_frame(results, task, metric, peers_only=True)
        if diffs.empty:
            continue
        higher = diffs[diffs["verdict"] == "lower"]["loss"].tolist()
        unseparated = diffs[(diffs["verdict"] != "lower") & (diffs["mean_diff"] < 0)]["loss"].tolist()
        parts = []
        if higher:
            parts.append(f"higher by their interval: {_names(higher)}")
        if unseparated:
            parts.append(f"higher mean, interval holds 0: {_names(unseparated)}")
        if parts:
            lines.append(f"- {metric}: " + "; ".join(parts))
    if not lines:
        return f"Where `{reference}` does not win: nowhere — it has the highest mean on every metric.\n"
    return f"Where `{reference}` does not win (peers above it):\n\n" + "\n".join(lines) + "\n"


def comparisons_markdown(results: pd.DataFrame, task: str) -> str:
    """Markdown of every :data:`COMPARISONS` entry of ``task`` whose two rows are in ``results``:
    a paired table per comparison and each check's answer; "" when none applies."""
    present = set(results["loss"])
    blocks = []
    for comparison in COMPARISONS[task]:
        if not {comparison.candidate, comparison.baseline} <= present:
            continue
        frame = pd.concat(
            [
                paired_differences(results, metric, comparison.candidate, others=[comparison.baseline])
                .drop(columns="loss")
                .assign(metric=metric)
                for metric in comparison.metrics
            ],
            ignore_index=True,
        )
        frame = frame[["metric", *[c for c in frame.columns if c != "metric"]]]
        questions = " ".join(f"**{question}**" for _, _, question in comparison.checks)
        answers = "".join(_answer(results, comparison, rule, decide, frame) for rule, decide, _ in comparison.checks)
        blocks.append(
            f"{questions} `{comparison.candidate}` minus `{comparison.baseline}`, paired by seed:\n\n"
            + _paired_markdown(frame, "metric", comparison.candidate)
            + "\n"
            + answers
        )
    return "\n".join(blocks)


def _answer(
    results: pd.DataFrame, comparison: Comparison, rule: str, decide: tuple[str, ...], frame: pd.DataFrame
) -> str:
    """One check's answer (the rules of the module docstring)."""
    candidate, baseline = f"`{comparison.candidate}`", f"`{comparison.baseline}`"
    if rule == "default":
        (metric,) = decide
        check = beats_default(results, comparison.candidate, comparison.baseline, metric)
        if not np.isfinite(check["bar"]) or check["pairs"] < 2:
            return f"- Answer: **untested** — {check['pairs']} paired seed(s) are too few for the project's rule.\n"
        detail = (
            f"higher on {check['wins']} of {check['pairs']} seeds, mean gain {_signed(check['gain'])} against the "
            f"bar {check['bar']:.4f} = 2 x the larger seed std"
        )
        word = "yes" if check["beats"] else "no"
        does = "beats" if check["beats"] else "does not beat"
        return f"- Answer: **{word}** — {candidate} {does} {baseline} on {metric} by the project's rule ({detail}).\n"
    verdicts = frame.set_index("metric")["verdict"]
    if rule == "reach":
        words = {"higher": "exceeds", "level": "reaches (interval holds 0)", "lower": "falls short of"}
    elif rule == "help":
        words = {"higher": "is higher than", "level": "is not measurably different from", "lower": "is lower than"}
    else:
        words = {"higher": "keeps (higher than)", "level": "keeps (level with)", "lower": "loses against"}
    words["untested"] = "is untested against"
    answers = [f"{candidate} {words[verdicts[metric]]} {baseline} on {metric}" for metric in decide]
    if any(verdicts[m] == "untested" for m in decide):
        word = "untested"
    else:
        helped = ("higher",) if rule == "help" else ("higher", "level")
        word = "yes" if all(verdicts[m] in helped for m in decide) else "no"
    return f"- Answer: **{word}** — " + "; ".join(answers) + ".\n"


def recommendation(results: pd.DataFrame, task: str) -> str:
    """Which loss a user should start with: the reference RAL row, unless a variant of
    :data:`VARIANTS` beats it on the headline metric by the project's rule (the largest gain wins)."""
    reference, metric = REFERENCE[task], headline_metric(task)
    present = set(results["loss"])
    if reference not in present:
        return ""
    tried = [v for v in VARIANTS[task] if v in present]
    if not tried:
        return ""
    checks = {variant: beats_default(results, variant, reference, metric) for variant in tried}
    if min(check["pairs"] for check in checks.values()) < 2:
        return f"**Loss to start with for {task} data: untested** (the project's rule needs at least 2 paired seeds).\n"
    winners = [(check["gain"], variant) for variant, check in checks.items() if check["beats"]]
    if winners:
        gain, best = max(winners)
        return (
            f"**Start with `{best}`** for {task} data: it beats `{reference}` on {metric} by the project's rule "
            f"(mean gain {gain:+.4f}).\n"
        )
    return (
        f"**Start with `{reference}`** for {task} data: no variant ({_names(tried)}) beats it on {metric} by the "
        "project's rule.\n"
    )


def plot_losses(
    results: pd.DataFrame,
    per_class: pd.DataFrame,
    task: str,
    metrics_path: str | os.PathLike,
    per_class_path: str | os.PathLike,
    *,
    budget_name: str,
) -> tuple[Path, Path]:
    """The bar chart of the means (std error bars) and the loss x class heat map of the per-class score."""
    from ral.report import plot_heatmap, plot_metric_bars

    metrics = metric_names(task)
    summary = summary_frame(results, task)
    plot_metric_bars(
        summary[["loss", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")]]],
        metrics_path,
        metrics=list(metrics),
        title=f"Test metrics, mean over seeds (error bars: sample std), budget {budget_name}",
    )
    score = SCORE_NAME[task]
    mean_scores = per_class.groupby(["loss", "class"], sort=False)[score].mean().unstack("class")
    counts = per_class.drop_duplicates("class").set_index("class")["count"]
    labels = list(pd.unique(results["loss"]))
    mean_scores = mean_scores.reindex(index=labels, columns=list(counts.index))
    plot_heatmap(
        mean_scores.to_numpy(),
        labels,
        [f"{c} ({n})" for c, n in counts.items()],
        per_class_path,
        title=f"Per-class test {score}, mean over seeds (columns: training count, most frequent first)",
        fmt=".2f",
        sort_cols_by=counts.to_numpy(dtype=float),
        colorbar_label=score,
    )
    return Path(metrics_path), Path(per_class_path)
