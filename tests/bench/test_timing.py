"""The timing harness of `ral bench speed` / `ral bench step`: interleaving, warm-ups, paired ratios.
No timing is asserted beyond what the arithmetic fixes."""

from __future__ import annotations

import pandas as pd
import pytest

from ral.bench.timing import interleaved_times, machine_description, one_call_seconds, paired_summary, ratio_text


def test_rounds_alternate_the_order_and_time_each_callable_once_per_round():
    log = []
    tasks = {name: (lambda name=name: log.append(name)) for name in ("a", "b", "c")}
    times = interleaved_times(tasks, rounds=3, calls=4, warmup=1)
    assert list(times.columns) == ["round", "name", "seconds"] and len(times) == 9
    assert list(times["name"]) == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert (times["seconds"] > 0).all()
    # 1 warm-up per task first, then per round and task torch.utils.benchmark's 2 untimed calls and 4 timed ones
    assert log[:3] == ["a", "b", "c"] and log[3:9] == ["a"] * 6 and len(log) == 3 + 9 * 6
    calls = []
    assert one_call_seconds(lambda: calls.append(1), "cpu") >= 0 and calls == [1]


def test_paired_summary_is_the_median_of_round_by_round_ratios():
    times = pd.DataFrame(
        {
            "round": [0, 0, 1, 1, 2, 2, 3],
            "name": ["ref", "x", "ref", "x", "ref", "x", "ref"],
            "seconds": [0.010, 0.011, 0.020, 0.020, 0.010, 0.013, 0.5],
        }
    )
    summary = paired_summary(times, "ref").set_index("name")
    assert list(summary.columns) == ["median_ms", "ratio_median", "ratio_q25", "ratio_q75"]
    # ratios 1.1, 1.0, 1.3 (round 3 has no time of x) -> median 1.1, quartiles 1.05 and 1.2
    assert summary.loc["x", "ratio_median"] == pytest.approx(1.1)
    assert summary.loc["x", "ratio_q25"] == pytest.approx(1.05) and summary.loc["x", "ratio_q75"] == pytest.approx(1.2)
    assert summary.loc["x", "median_ms"] == pytest.approx(13.0)
    assert summary.loc["ref", "ratio_median"] == 1.0
    assert ratio_text(1.1, 1.05, 1.2) == "1.10 [1.05, 1.20]"


def test_bad_settings():
    with pytest.raises(ValueError, match="rounds must be an integer >= 1, got 0"):
        interleaved_times({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="warmup must be an integer >= 0, got -1"):
        interleaved_times({"a": lambda: None}, rounds=1, warmup=-1)
    with pytest.raises(ValueError, match="clock must be 'wall' or 'cpu', got 'gpu'"):
        interleaved_times({"a": lambda: None}, rounds=1, clock="gpu")
    with pytest.raises(ValueError, match="at least one callable"):
        interleaved_times({}, rounds=1)
    with pytest.raises(ValueError, match="reference 'z' not in the timings"):
        paired_summary(pd.DataFrame({"round": [0], "name": ["a"], "seconds": [1.0]}), "z")


def test_machine_description_names_threads_and_load():
    text = machine_description()
    assert "logical cores" in text and "threads" in text and "Python" in text
