"""ral.bench.speed (the loss-speed benchmark): runs, summarises, writes; the ASL-style timing
reference computes ASL. No timing is asserted (benchmarks are not tests)."""

from __future__ import annotations

import pytest
import torch

from ral.bench.speed import OfficialStyleASL, SpeedConfig, parse_shape, peak_memory_bytes, run_speed


def test_run_speed_writes_a_table(tmp_path):
    config = SpeedConfig(
        shapes=((8, 5), (3, 2)), losses=("ral", "ral_eager", "asl_reference", "focal"), rounds=2, repeats=1, warmup=0
    )
    summary, text = run_speed(config, tmp_path, command="pytest")
    assert set(summary["loss"]) == {"bce", "ral", "ral_eager", "asl_reference", "focal"}
    assert len(summary) == 10
    bce = summary[summary["loss"] == "bce"]
    assert (bce["ratio_to_bce"] == 1.0).all() and (bce["memory_ratio_to_bce"] == 1.0).all()
    assert (summary["median_ms"] > 0).all() and (summary["peak_mib"] > 0).all() and (summary["first_call_s"] > 0).all()
    assert "| 8x5 | ral |" in text and "Command: `pytest`" in text
    assert {p.name for p in tmp_path.iterdir()} == {"speed.csv", "speed_summary.csv", "speed.md"}


def test_peak_memory_counts_what_a_step_allocates(capfd):
    kept = []
    peak = peak_memory_bytes(lambda: kept.append(torch.empty(1000, 250)))  # 1,000,000 bytes
    assert 1_000_000 <= peak < 1_100_000
    assert "profiler_start" not in capfd.readouterr().err  # libkineto's "USDT: ..." lines are silenced


def test_official_style_asl_is_asl(ral_ref):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=gen, dtype=torch.float64) * 3
    y = (torch.rand(6, 4, generator=gen) < 0.4).double()
    expected = ral_ref.asl(x, y, gamma_pos=1.0, gamma_neg=4.0, clip=0.05).sum()
    torch.testing.assert_close(OfficialStyleASL()(x, y), expected, rtol=1e-10, atol=0)


def test_bad_settings():
    with pytest.raises(ValueError, match="shape.*'4096'"):
        parse_shape("4096")
    with pytest.raises(ValueError, match=r"repeats\n  Input should be greater than or equal to 1"):
        SpeedConfig(repeats=0)
    with pytest.raises(ValueError, match=r"clock\n  Input should be 'wall' or 'cpu'"):
        SpeedConfig(clock="gpu")


@pytest.mark.slow
def test_cli(tmp_path, capsys):
    """End to end through the command line (imports the whole CLI): slow suite."""
    from ral.cli import main

    code = main(
        [
            "bench",
            "speed",
            "--shapes",
            "4x3",
            "--losses",
            "ral",
            "--rounds",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--no-memory",
            "--threads",
            str(torch.get_num_threads()),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "| 4x3 | ral |" in capsys.readouterr().out
    assert (tmp_path / "speed.md").exists()
    assert main(["bench", "speed", "--shapes", "4by3", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_breakdown_and_profile(tmp_path):
    """The breakdown times the opt-in compiled kernel too: it compiles."""
    from ral.bench.speed import breakdown_report, profile_ral

    config = SpeedConfig(shapes=((6, 4),), rounds=1, repeats=1, warmup=0)
    text = breakdown_report(config, tmp_path)
    assert "| 6x4 | input validation (prepare_multilabel) |" in text
    assert (tmp_path / "breakdown.csv").exists()
    assert "aten::" in profile_ral((6, 4), config)
