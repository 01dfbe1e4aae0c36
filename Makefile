# The two ways to start (README.md): `make demo` and `make test`.
# Both create .venv when it is missing and install the pinned stack and the package.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
CORES ?= all

.PHONY: demo demo-core test test-fast test-cluster lint format report clean-demo

# Where this machine keeps the CPU build of the pinned torch (pip's find-links here).
LOCAL_WHEELS ?= /opt/wheels
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.txt)
TORCH_WHEEL := $(firstword $(wildcard $(LOCAL_WHEELS)/torch-$(TORCH_VERSION)+cpu-cp311-*.whl))

# With that wheel on disk, uv (from PyPI) installs the same pinned stack in about a minute
# instead of pip's two and a half (README, "Measured"); the wheel is named explicitly so
# uv cannot take a CUDA build. Without it, or if uv cannot be had, pip does it, torch
# first and exact so that pip takes a CPU wheel from its find-links.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@if [ -n "$(TORCH_WHEEL)" ] && $(BIN)/python -m pip install --quiet uv; then \
	  echo "installing with uv, torch from $(TORCH_WHEEL)"; \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode \
	    "$(TORCH_WHEEL)" -r requirements-dev.txt && \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .; \
	else \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" && \
	  $(BIN)/python -m pip install --quiet -r requirements-dev.txt && \
	  $(BIN)/python -m pip install --quiet --no-deps -e .; \
	fi
	@touch $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml
	$(OFFLINE) $(BIN)/snakemake --configfile config/demo.yaml --report report.zip

# The language-arithmetic core alone: the demo config without the arms' sections (an
# arm's config key is its name in langarith.arm_registry, filled by load_arms), written
# under .snakemake/ and run the same way.
DEMO_CORE := .snakemake/demo-core.yaml
demo-core: $(STAMP)
	@mkdir -p .snakemake
	$(BIN)/python -c "import yaml; from langarith.arms import load_arms; from langarith.arm_registry import ARM_OUTPUTS; load_arms(); c = yaml.safe_load(open('config/demo.yaml')); [c.pop(k, None) for k in ARM_OUTPUTS]; yaml.safe_dump(c, open('$(DEMO_CORE)', 'w'), sort_keys=False)"
	$(OFFLINE) $(BIN)/snakemake --cores $(CORES) --configfile $(DEMO_CORE)

test: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest -q -m "slow or not slow"

test-fast: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest -q -m "not slow"

test-cluster: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest -q -s -m cluster tests/test_cluster.py

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(OFFLINE) $(BIN)/snakemake --lint --configfile config/demo.yaml

format: $(STAMP)
	$(BIN)/ruff format src tests workflow/scripts benchmarks
	$(BIN)/snakefmt Snakefile rules

report: $(STAMP)
	$(OFFLINE) $(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml --report report.zip

clean-demo:
	rm -rf resources results/* logs benchmarks/*/ figures/*.png figures/*.pdf .checkpoints .snakemake
