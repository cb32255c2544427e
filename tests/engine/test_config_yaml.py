"""Config files that hide mistakes (issue 19): keys given twice, broken YAML, overrides that are no YAML."""

from __future__ import annotations

import pytest

from ral.engine.configfile import apply_overrides, load_config, short_repr


def test_a_key_given_twice_is_refused_naming_it_and_both_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {train: t.csv}\ntrain: {epochs: 1}\nloss: {name: bce}\ntrain: {batch_size: 8}\n")
    with pytest.raises(ValueError, match=r"^.*c\.yaml:4:1: key 'train' given twice \(first on line 2\)$"):
        load_config(path)
    path.write_text("dataset:\n  train: t.csv\n  image_size: 32\n  train: u.csv\n")
    with pytest.raises(ValueError, match=r"c\.yaml:4:3: key 'train' given twice \(first on line 2\)"):
        load_config(path)


def test_broken_yaml_is_one_line_with_line_and_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\ndataset: [1,2\n")
    with pytest.raises(ValueError) as caught:
        load_config(path)
    assert (
        str(caught.value) == f"{path}:3:1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"
    )
    with pytest.raises(ValueError, match=r"^override train\.epochs:1:1: found undefined alias 'x'"):
        apply_overrides({}, ["train.epochs=*x"])


def test_long_values_are_shortened():
    nested = [[list(range(100))] * 100] * 100
    assert len(short_repr(nested)) == 100 and len(short_repr("x" * 10_000)) <= 80
    assert short_repr(["A", "B"]) == "['A', 'B']"
