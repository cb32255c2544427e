"""Loss speed benchmark: forward+backward time and peak memory of fused RAL, autograd RAL, an
ASL-style reference, ASL, focal and BCEWithLogitsLoss at (256, 26), (1024, 26), (4096, 1000)
and (16384, 26), as ratios to BCE measured in the same process.

    .venv/bin/python benchmarks/loss_speed.py                 # torch's default threads
    .venv/bin/python benchmarks/loss_speed.py --threads 1 --clock cpu --out runs/bench/speed-1t

Same options as ``ral bench speed`` (this script calls it). Results: docs/results.md.
"""

from __future__ import annotations

import sys

from ral.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "speed", *sys.argv[1:]]))
