"""``python -m ral.cli ...`` (e.g. under ``torchrun``) is the ``ral`` command."""

import sys

from ral.cli import main

sys.exit(main())
