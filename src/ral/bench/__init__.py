"""Benchmarks that are not tests: loss speed (``speed``), loss comparison at equal budget
(``losses``), hyper-parameter sensitivity (``sensitivity``) and training-step time
(``step_time``); ``timing`` is the interleaved-rounds harness of the timing benchmarks. Each
module is imported on demand by ``ral bench ...``."""
