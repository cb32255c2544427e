"""Fixtures of the bench tests: the project's report scripts (benchmarks/, not installed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as module ``name`` (as the report script imports its siblings)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def scripts() -> SimpleNamespace:
    """``benchmarks/report.py`` and its siblings (claims, evidence_plan, report_files, report_tune) as modules."""
    names = ("claims", "evidence_plan", "report_files", "report_tune", "report")
    return SimpleNamespace(**{name: _load(name) for name in names})


@pytest.fixture(scope="session")
def tiny_budget():
    """The quick budget at the simulator's smallest sets (200 images per split) and 16 px: smoke runs."""
    from ral.bench.experiment import budget_with, get_budget

    return budget_with(get_budget("quick"), image_size=16, n_train=200, n_val=200, n_test=200)


@pytest.fixture(scope="session")
def tiny_tables(tiny_budget, tmp_path_factory):
    """The simulated multi-label set at :func:`tiny_budget`, simulated once: the tables of the smoke runs."""
    from ral.bench.experiment import simulated_data

    return simulated_data(tmp_path_factory.mktemp("tiny") / "data", tiny_budget)


@pytest.fixture(scope="module")
def no_evaluate_figures():
    """The smoke runs skip the two figures and report.html ``ral evaluate`` draws (tested in tests/engine): a
    third of a tiny run."""
    import ral.report

    with pytest.MonkeyPatch.context() as patch:
        for name in ("plot_ap_vs_frequency", "plot_pr_curves", "write_eval_report"):
            patch.setattr(ral.report, name, lambda *args, **kwargs: None)
        yield
