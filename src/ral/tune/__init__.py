"""``ral tune``: a loss's hyper-parameters tuned with Optuna, each trial a real ``ral train``.

See docs/tune.md. :func:`tune` is one worker of a study; the search spaces are declared on the loss
classes (``search_space``, :mod:`ral.losses._space`) and changed by the config's ``tune.space``.
Optuna is imported only when a study runs.
"""

from ral.tune.run import tune

__all__ = ["tune"]
