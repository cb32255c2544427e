"""The ``ral`` command. Subcommands only parse arguments and delegate to the package.

Each ``_add_*`` function below registers one group of subcommands; each subcommand sets
``func`` to a small handler that imports the implementing module lazily (so ``ral --help``
stays fast and importing the CLI never imports torch-heavy code it does not need).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


# --- ral data ... (owned by the data layer) -------------------------------------------------
def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="simulate datasets and inspect label tables")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    del data_sub  # subcommands are registered below by the data layer


# --- ral train / evaluate / predict (owned by the engine) -----------------------------------
def _add_engine_commands(sub: argparse._SubParsersAction) -> None:
    del sub


# --- ral bench ... (owned by the bench layer) -----------------------------------------------
def _add_bench_commands(sub: argparse._SubParsersAction) -> None:
    del sub


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        # Bad input: one clear line, no traceback.
        print(f"ral {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
