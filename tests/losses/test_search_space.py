"""The search spaces declared on the loss classes (``search_space``): plain ranges every loss accepts."""

from __future__ import annotations

import inspect

import pytest

from ral.losses import LOSSES, Choice, FloatRange, IntRange, build_loss
from ral.losses._space import split_name, value_of, with_values

TUNED = ("ral", "asl", "apl", "hill", "ral_cb", "focal", "cb", "ldam", "focal_ce", "logit_adjusted", "ral_la")


def _defaults(cls: type) -> dict:
    return {k: p.default for k, p in inspect.signature(cls).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_bound_and_choice_builds_the_loss(name: str) -> None:
    cls = LOSSES[name]
    defaults = _defaults(cls)
    for key, entry in cls.search_space.items():
        assert isinstance(entry, (FloatRange, IntRange, Choice))
        base, _ = split_name(key)
        assert base in inspect.signature(cls).parameters, f"{name}: {key} is no option"
        value_of(defaults, key)  # a list option is long enough for its element
        for value in entry.values if isinstance(entry, Choice) else (entry.low, entry.high):
            params = with_values(defaults, {key: value})
            build_loss(name, class_counts=[30, 6, 2], num_samples=40, **{base: params[base]})


def test_the_claim_2_losses_and_the_peers_declare_a_space() -> None:
    assert all(LOSSES[name].search_space for name in TUNED)
    assert {"gamma_neg", "gamma_pos", "tau", "lam", "eps_pos.0", "eps_pos.1", "beta"} <= set(LOSSES["ral"].search_space)
    assert set(LOSSES["asl"].search_space) == {"gamma_neg", "gamma_pos", "clip"}
    assert LOSSES["ral_cb"].search_space.keys() > LOSSES["ral"].search_space.keys()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FloatRange(low=2.0, high=1.0), "low must be smaller than high"),
        (lambda: FloatRange(low=0.0, high=1.0, log=True), "log range needs low > 0"),
        (lambda: FloatRange(low=float("nan"), high=1.0), "low must be a finite number"),
        (lambda: IntRange(low=1, high=3, step=0), "step >= 1"),
        (lambda: Choice(values=(1.0, 1.0)), "two distinct values"),
    ],
)
def test_bad_ranges_are_refused(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_elements_of_list_options() -> None:
    params = with_values({"eps_pos": (-1.0, 1.25), "gamma_neg": 4.0}, {"eps_pos.1": 2.0, "beta": (1.0, 0.5)})
    assert params == {"eps_pos": [-1.0, 2.0], "gamma_neg": 4.0, "beta": [1.0, 0.5]}
    with pytest.raises(ValueError, match="eps_pos has 2 element"):
        with_values({"eps_pos": (-1.0, 1.25)}, {"eps_pos.2": 0.0})
