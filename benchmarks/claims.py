"""The verdict rules of docs/results.md: the project's claims read from the benchmarks' tables.

Every verdict is a rule applied to paired differences over seeds (``ral.bench.summary``: Student
t interval at 95 %) or to the sensitivity statistics (``ral.bench.sensitivity_report``):

- *claim 1* (RAL at least as accurate as its peers), per task, against the peers (the rows that are
  not RAL or a variant of it, :data:`RAL_LOSSES`): "shown" when RAL's headline metric is higher than
  every peer's (interval above 0), "consistent" when no peer is higher but some are level (interval
  holds 0), "not supported" when some peer is higher (interval below 0); "where RAL does not win"
  lists, for every metric, the peers higher than RAL by their interval, and the peers with a higher
  mean that the interval cannot separate.
- *variants* (:data:`COMPARISONS`): "exceeds / reaches / falls short of" (``reach``), "keeps / loses"
  (``keep``) by the interval's direction; options to decide (``default``) by the project's rule for
  defaults (:func:`beats_default`).
- *claim 2* (the Hill weight makes a loss less sensitive): per dataset and overall, from the matched
  comparisons' verdicts (:func:`ral.bench.sensitivity_report.sensitivity_verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ral.bench.losses_report import REFERENCE, paired_table
from ral.bench.sensitivity import MATCHED
from ral.bench.sensitivity_report import dataset_labels, matched_statistics
from ral.bench.summary import paired_differences
from ral.data.table import Task
from ral.metrics import headline_metric, metric_names

#: Registry names of RAL and its variants: rows of these losses are RAL, not its peers, in claim 1.
RAL_LOSSES = ("ral", "ral_cb", "ral_single", "ral_la")
#: Claim 1's rule in words (docs/results.md shows it above the tables).
CLAIM1_RULE = (
    "Verdict rule (`benchmarks/claims.py`): **shown** when RAL's headline metric (mAP; single-label: balanced "
    "accuracy) is higher than every peer's, i.e. the 95% t interval of the paired difference over seeds lies above "
    "0 for every peer; **consistent with the claim, not shown** when no peer is higher but some are level (interval "
    "holds 0); **not supported** when some peer is higher (interval below 0). Peers: the losses that are not RAL or "
    "one of its variants (`ral_cb`, `ral_la`, `ral_prior`, ...). *Where RAL does not win* lists, per metric, the "
    "peers above RAL.\n\n"
)


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


_SHOWN_ML = ("mAP", "head_mAP", "medium_mAP", "tail_mAP")
_SHOWN_SL = ("balanced_accuracy", "accuracy", "head_acc", "medium_acc", "tail_acc")

#: The questions about the long-tail variants of RAL (rows of the default loss lists).
COMPARISONS: dict[Task, tuple[Comparison, ...]] = {
    "multilabel": (
        Comparison(
            "ral_cb",
            "cb_focal",
            _SHOWN_ML,
            (("reach", ("tail_mAP",), "Does class-balanced RAL reach the class-balanced focal loss on the tail?"),),
        ),
        Comparison(
            "ral_cb",
            "ral",
            _SHOWN_ML,
            (("keep", ("head_mAP", "medium_mAP"), "Does class-balanced RAL keep RAL's head and medium mAP?"),),
        ),
        Comparison(
            "ral_cb_both",
            "ral_cb",
            _SHOWN_ML,
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
            _SHOWN_ML,
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
            _SHOWN_SL,
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
            _SHOWN_SL,
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
VARIANTS: dict[Task, tuple[str, ...]] = {"multilabel": ("ral_cb", "ral_cb_both", "ral_prior"), "single": ("ral_la",)}


def beats_default(results: pd.DataFrame, candidate: str, incumbent: str, metric: str, *, by: str = "loss") -> dict:
    """The project's rule for changing a default: ``candidate`` replaces ``incumbent`` only if it is
    higher on ``metric`` on every seed both ran (paired) and by a mean gain of at least twice the
    larger of the two sample standard deviations over seeds.

    Returns:
        ``{"pairs", "wins", "gain", "bar", "beats"}`` (``beats`` False with fewer than 2 pairs).
    """
    diff = paired_differences(results, metric, candidate, by=by, others=[incumbent]).iloc[0]
    spread = [
        float(pd.to_numeric(results.loc[results[by] == name, metric], errors="coerce").std(ddof=1))
        for name in (candidate, incumbent)
    ]
    bar = 2.0 * max(spread) if all(np.isfinite(spread)) else float("nan")
    pairs, wins, gain = int(diff["pairs"]), int(diff["wins"]), float(diff["mean_diff"])
    beats = pairs >= 2 and wins == pairs and np.isfinite(bar) and gain >= bar
    return {"pairs": pairs, "wins": wins, "gain": gain, "bar": bar, "beats": bool(beats)}


def _peer_differences(results: pd.DataFrame, task: Task, metric: str | None = None) -> pd.DataFrame:
    """The reference RAL row minus every peer (not RAL or one of its variants) on ``metric``, paired
    by seed; empty when the reference or every peer is absent."""
    reference = REFERENCE[task]
    ral_rows = set(results.loc[results["loss_name"].isin(RAL_LOSSES), "loss"])
    peers = [label for label in pd.unique(results["loss"]) if label != reference and label not in ral_rows]
    if reference not in set(results["loss"]) or not peers:
        return pd.DataFrame()
    return paired_differences(results, metric or headline_metric(task), reference, others=peers)


def claim1_verdict(results: pd.DataFrame, task: Task) -> str:
    """Claim 1 for one task, by the rule of this module's docstring, as markdown text."""
    reference, metric = REFERENCE[task], headline_metric(task)
    diffs = _peer_differences(results, task)
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


def _not_winning(results: pd.DataFrame, task: Task) -> str:
    """Where the reference does not win: per metric, the peers higher by their interval or by their mean."""
    reference = REFERENCE[task]
    lines = []
    for metric in metric_names(task):
        diffs = _peer_differences(results, task, metric)
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


def comparisons_markdown(results: pd.DataFrame, task: Task) -> str:
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
            + paired_table(frame, "metric", comparison.candidate)
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
            f"higher on {check['wins']} of {check['pairs']} seeds, mean gain {check['gain']:+.4f} against the "
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


def recommendation(results: pd.DataFrame, task: Task) -> str:
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


def dataset_verdict(matched: pd.DataFrame, dataset: str) -> str:
    """One sentence for one dataset: what the matched comparisons show, stated plainly either way."""
    rows = matched[matched["dataset"] == dataset]
    if rows.empty:
        return "no matched comparison ran (the arms of `ral.bench.sensitivity.MATCHED` are needed)"
    parts = [f"`{r['without']}` -> `{r['with']}`: {r['verdict']}" for r in rows.to_dict("records")]
    verdicts = set(rows["verdict"])
    if verdicts == {"less sensitive"}:
        head = "**supported** — the Hill weight made every matched loss less sensitive"
    elif "untested" in verdicts:
        head = "**untested** — one seed gives no interval"
    elif "less sensitive" in verdicts:
        head = "**partly supported** — the Hill weight made only some matched losses less sensitive"
    elif "more sensitive" in verdicts:
        head = "**contradicted** — the Hill weight made a matched loss more sensitive"
    else:
        head = "**not shown** — no matched comparison separates the spreads"
    return head + " (" + "; ".join(parts) + ")"


def claim2_head(matched: pd.DataFrame) -> str:
    """The overall answer of claim 2 over every dataset and matched pair, by the rule of this module."""
    if matched.empty:
        return "**not tested** (no matched comparison ran)"
    verdicts = set(matched["verdict"])
    if verdicts == {"less sensitive"}:
        return "**shown** on every dataset and matched pair"
    if "less sensitive" in verdicts:
        counted = int((matched["verdict"] == "less sensitive").sum())
        return f"**partly shown** ({counted} of {len(matched)} matched comparisons less sensitive)"
    if verdicts == {"untested"}:
        return "**not tested** (one seed)"
    return "**not shown** (no matched comparison is less sensitive by the rule)"


def claim2_verdict(frame: pd.DataFrame, task: Task) -> str:
    """The overall verdict of claim 2 and one line per dataset, as markdown."""
    matched = matched_statistics(frame, headline_metric(task), MATCHED)
    lines = (
        [f"- missing rate {d}: {dataset_verdict(matched, d)}" for d in dataset_labels(frame)] if len(matched) else []
    )
    return (
        f"\nVerdict on claim 2 (the Hill weight makes the loss less sensitive): {claim2_head(matched)}.\n\n"
        + "\n".join(lines)
        + "\n"
    )
