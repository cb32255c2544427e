"""Benchmarks that are not tests: loss comparison at equal budget (``losses``), hyper-parameter
sensitivity (``sensitivity``), loss speed (``speed``), training-step time (``step_time``) and
pipeline throughput (``throughput``); ``timing`` is the interleaved-rounds harness of the timing
benchmarks. Each module is imported on demand by ``ral bench ...``. The project's own claim report
(docs/results.md) is built from their outputs by ``benchmarks/report.py``, outside the package."""
