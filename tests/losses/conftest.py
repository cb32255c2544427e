"""Shared test setup for tests/losses."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_intra_op_thread():
    """The loss tests use tiny tensors: one intra-op thread avoids thread-pool overhead (tens
    of ms per op on a busy 2-core machine). Restored after each test module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


#: Both RAL implementations, for tests that run few distinct settings.
IMPLS = ("compiled", "eager")
#: For large parameter matrices: the compiled path compiles once per distinct setting (about
#: 2 s each on a 2-core CPU), so there it runs with `make test-slow` only; test_ral_compiled.py
#: checks it on a representative set of settings in the default suite.
IMPLS_COMPILED_SLOW = ("eager", pytest.param("compiled", marks=pytest.mark.slow))
