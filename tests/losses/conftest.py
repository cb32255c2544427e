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
