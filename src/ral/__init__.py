"""ral: Robust Asymmetric Loss and a toolkit for multi-label, long-tailed medical image classification."""

__version__ = "0.1.0"
