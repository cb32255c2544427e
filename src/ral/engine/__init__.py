"""Training, evaluation and prediction: the ``ral train`` / ``ral evaluate`` / ``ral predict`` pipeline.

- :func:`train` fits a model from a :class:`Config` (YAML + overrides, see :func:`load_config`)
  with Lightning, writing atomic, weights-only checkpoints that ``resume=True`` continues.
- :func:`evaluate` writes metrics.json, per_class.csv, bootstrap intervals and plots.
- :func:`predict` writes probabilities in the CXR-LT submission layout.

The functions that need Lightning load with their first use, so reading a config (and the
``ral`` command's start) does not wait for it.
"""

from importlib import import_module

from ral.engine.config import Config
from ral.engine.configfile import (
    apply_overrides,
    config_error,
    config_from_checkpoint,
    config_from_dict,
    dump_yaml,
    load_config,
    validate_config,
)

_LAZY = {
    "evaluate": "ral.engine.evaluation",
    "load_trained_model": "ral.engine.inference",
    "predict": "ral.engine.prediction",
    "predict_probabilities": "ral.engine.inference",
    "train": "ral.engine.training",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ral.engine' has no attribute {name!r}")


__all__ = [
    "Config",
    "apply_overrides",
    "config_error",
    "config_from_checkpoint",
    "config_from_dict",
    "dump_yaml",
    "evaluate",
    "load_config",
    "load_trained_model",
    "predict",
    "predict_probabilities",
    "train",
    "validate_config",
]
