"""The `ral` command: flags derived from the declarations, overrides, one-line errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ral.cli import main
from ral.cli.app import COMMANDS
from ral.cli.engine_commands import TrainCommand
from ral.data import TableOptions
from ral.engine import Config

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "configs" / "demo.yaml")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def printed_config(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "train", "--config", DEMO, "--print-config", *argv)
    assert code == 0, err
    return yaml.safe_load(out)


def test_overrides_and_flags_both_set_config_keys(capsys):
    assert printed_config(capsys, "loss.name=asl")["loss"]["name"] == "asl"
    assert printed_config(capsys, "--loss.name", "asl")["loss"]["name"] == "asl"
    config = printed_config(capsys, "--train.epochs", "3", "--optimizer.lr=1e-4", "--dataset.skip-bad")
    assert (config["train"]["epochs"], config["optimizer"]["lr"], config["dataset"]["skip_bad"]) == (3, 1e-4, True)
    assert printed_config(capsys, "--loss.params", '{"gamma_neg": 2}')["loss"]["params"] == {"gamma_neg": 2}
    assert printed_config(capsys)["dataset"]["train"] == "data/simulated/train.csv"  # the file, unchanged
    config = printed_config(capsys, "--dataset.skip-bad", "dataset.classes=[A,B]", 'loss.params={"eps_pos": [1, 2]}')
    assert config["dataset"]["classes"] == ["A", "B"] and config["loss"]["params"] == {"eps_pos": [1, 2]}


def test_every_config_key_is_a_flag():
    from ral.cli import _flags

    flags = set(_flags(TrainCommand))
    for name, info in Config.model_fields.items():
        section = info.annotation
        keys = [f"{name}.{key}" for key in section.model_fields] if hasattr(section, "model_fields") else [name]
        assert {key.replace("_", "-") for key in keys} <= flags, name


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--config", DEMO, "--loss.nme", "asl"], "unknown option '--loss.nme' (did you mean --loss.name?)"),
        (["train", "--config", DEMO, "loss.nme=asl"], "unknown config key 'loss.nme' (did you mean 'loss.name'?)"),
        (["train", "--config", DEMO, "--optimizer.lr", "-1"], "config key 'optimizer.lr': input should be greater"),
        (["train", "--config", "/no/such.yaml"], "config file not found: /no/such.yaml"),
        (["train", "--config", DEMO, "--resume", "--overwrite"], "give --resume or --overwrite, not both"),
        (["data", "stats", "t.csv", "--uncertain", "maybe"], "--uncertain: input should be 'ignore', 'ones' or"),
        (["data", "stats", "t.csv", "--uncertan", "ones"], "unknown option '--uncertan' (did you mean --uncertain?)"),
        (["evaluate", "--n-boot", "x", "--checkpoint", "a.ckpt"], "--n-boot: input should be a valid integer"),
        (["evaluate"], "--checkpoint is required"),
        (["bench", "speed", "--rounds", "0"], "rounds"),
    ],
)
def test_bad_input_is_one_line_with_status_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_data_errors_name_the_option_as_each_command_spells_it(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("path,subject_id,A\n,p1,1\nb.png,p2,0\n")
    code, _, err = run(capsys, "data", "stats", str(table))
    assert code == 2 and "(--skip-bad drops such rows)" in err and "line 2" in err and "column 'path'" in err
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"train": str(table)}, "output_dir": str(tmp_path / "run")}))
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 2 and "(dataset.skip_bad: true drops such rows)" in err and "dataset.train: " in err


def test_stats_flags_are_the_table_options():
    stats = COMMANDS[("data", "stats")]
    assert set(TableOptions.model_fields) <= set(stats.model_fields)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_has_help(capsys, path):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert "usage: ral " + " ".join(path) in capsys.readouterr().out


def test_version_and_no_command(capsys):
    assert run(capsys, "--version")[:2] == (0, f"ral {__import__('ral').__version__}\n")
    code, out, err = run(capsys)
    assert code == 2 and "subcommand is required" in out + err and "Traceback" not in out + err
