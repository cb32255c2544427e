# Every target creates/uses the local virtual environment .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ral-installed
TORCH_VERSION ?= 2.13.0
OUT    ?= runs/demo

.PHONY: venv lint test test-slow test-all demo bench bench-quick bench-speed clean

venv: $(STAMP)

# torch is installed pinned *first* and only when missing, so a user's CUDA build is kept
# and pip never resolves an unpinned torch (several GB of CUDA wheels).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m ral.demo --out $(OUT)

bench: $(STAMP)
	$(BIN)/ral bench losses --simulate

bench-quick: $(STAMP)
	$(BIN)/ral bench losses --simulate --quick

bench-speed: $(STAMP)
	$(BIN)/ral bench speed --threads 2 --out runs/bench/speed --overwrite

clean:
	rm -rf runs .pytest_cache
