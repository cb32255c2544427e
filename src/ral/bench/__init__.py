"""Benchmarks that are not tests: loss speed (``speed``), loss comparison at equal budget
(``losses``), hyper-parameter sensitivity (``sensitivity``) and training-step time
(``step_time``). Each module is imported on demand by ``ral bench ...``."""
