"""Training, evaluation and prediction: the ``ral train`` / ``ral evaluate`` / ``ral predict`` pipeline.

- :func:`train` fits a model from a :class:`Config` (YAML + overrides, see :func:`load_config`)
  with Lightning, writing atomic, weights-only checkpoints that ``resume=True`` continues.
- :func:`evaluate` writes metrics.json, per_class.csv, bootstrap intervals and plots.
- :func:`predict` writes probabilities in the CXR-LT submission layout.
"""

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
from ral.engine.evaluate import evaluate
from ral.engine.inference import load_trained_model, predict_probabilities
from ral.engine.predict import predict
from ral.engine.train import train

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
