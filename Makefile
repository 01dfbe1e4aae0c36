# The two ways to start (README.md): `make demo` and `make test`.
# Both create .venv when it is missing and install the pinned stack and the package.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
CORES ?= all

.PHONY: demo demo-core test test-fast test-cluster lint format report clean-demo

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and exact, so pip takes the CPU wheel rather than a CUDA build
	$(BIN)/python -m pip install --quiet "$$(grep '^torch==' requirements.txt)"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
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
