# Every target creates/uses the local virtual environment .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ral-installed
TORCH_VERSION ?= 2.13.0
OUT    ?= runs/demo

.PHONY: venv lint test test-slow test-browser test-all demo bench bench-quick bench-speed bench-shard bench-tune bench-timing bench-evidence bench-report clean

venv: $(STAMP)

# torch is installed pinned *first* and only when missing, so a user's CUDA build is kept
# and pip never resolves an unpinned torch (several GB of CUDA wheels).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -e ".[test,export,tensorboard,mlflow,tune,postgres]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

# report.html in headless Chromium (apt-get install -y chromium chromium-driver); also in test-slow / test-all
test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/engine/test_report_browser.py -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m ral.demo --out $(OUT)

bench: $(STAMP)
	$(BIN)/ral bench losses --simulate

bench-quick: $(STAMP)
	$(BIN)/ral bench losses --simulate --quick

# The full evidence of docs/results.md (about 4 hours on 2 cores; see its "How to reproduce"):
# every training benchmark as 2 shards in parallel (one torch thread each), then the timing
# benchmarks alone, then the report. Re-running resumes: finished runs are kept.
SHARD ?= 1/1
bench-shard: $(STAMP)
	$(BIN)/ral bench losses --simulate --shard $(SHARD)
	$(BIN)/ral bench losses --simulate --task single --shard $(SHARD)
	$(BIN)/ral bench losses --simulate --task fundus --shard $(SHARD)
	$(BIN)/ral bench sensitivity --simulate --shard $(SHARD)

# claim 2 as the gain tuning buys (about 1 h; one process: its searches are seeded)
bench-tune: $(STAMP)
	$(BIN)/ral bench tune --simulate

bench-timing: $(STAMP)
	$(BIN)/ral bench losses --simulate --quick
	$(BIN)/ral bench losses --simulate --quick --out runs/bench/losses-multilabel-quick-again
	$(BIN)/ral bench step --losses bce asl ral --repeats 30 --out runs/bench/step
	$(BIN)/ral bench speed --threads 0 --out runs/bench/speed
	$(BIN)/ral bench speed --threads 1 --clock cpu --breakdown --out runs/bench/speed-1thread
	if $(BIN)/ral bench throughput --help >/dev/null 2>&1; then \
		$(BIN)/ral bench throughput --quick --out runs/bench/throughput; fi

# docs/results.md from the bench folders: the project's claim report (benchmarks/, not part of the package)
bench-report: $(STAMP)
	$(BIN)/python benchmarks/report.py --runs runs/bench --out docs/results.md

bench-evidence: $(STAMP)
	$(MAKE) bench-shard SHARD=1/2 & $(MAKE) bench-shard SHARD=2/2 & wait
	$(MAKE) bench-shard SHARD=1/1
	$(MAKE) bench-tune
	$(MAKE) bench-timing
	$(MAKE) bench-report

bench-speed: $(STAMP)
	$(BIN)/ral bench speed --threads 2 --out runs/bench/speed --overwrite

# timm backbones (ConvNeXt) keeping the installed torch: pip is held to it by a constraint and picks the
# torchvision built for it (an unconstrained `pip install timm` replaces torch and pulls CUDA wheels).
.PHONY: timm
timm: $(STAMP)
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -e ".[timm]" -c $(VENV)/torch-constraint.txt

clean:
	rm -rf runs .pytest_cache
