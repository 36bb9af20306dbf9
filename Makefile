# The two commands of the README: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
STAMP := $(VENV)/.cellmoa-installed
# The demo trains on the CPU: run as many one-thread training jobs side by side as there are cores.
CORES ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: install demo demo-bbbc014 demo-screen test test-quick lint benchmark bench-gpu install-gpu gpu-wheels clean-demo

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,jax]'
	touch $(STAMP)

install: $(STAMP)

# A demo run: the pipeline (Snakemake says "Nothing to be done" when it is up to date), the HTML
# report (rewritten only when the summary is newer), then the tables. One-thread training jobs,
# as many side by side as there are cores (or $(2) threads a job: a demo of one network).
define run_demo
	$(SNAKEMAKE) --configfile $(1) --cores $(CORES) --resources gpu=$(CORES) --set-threads train=$(or $(2),1) train_all=$(or $(2),1) train_network=$(or $(2),1)
	@if [ results/report.html -nt results/tables/summary.tsv ] && [ "$$(cat results/.report-config 2>/dev/null)" = "$(1)" ]; then \
		echo "results/report.html is up to date"; \
	else \
		$(SNAKEMAKE) --configfile $(1) --report results/report.html && echo "$(1)" > results/.report-config; \
	fi
	$(PY) -m cellmoa.cli tables results/tables
endef

demo: $(STAMP)
	$(call run_demo,config/demo.yaml)

# BBBC014 (NF-kB translocation, two cell lines): the paper's second dataset, synthesized.
demo-bbbc014: $(STAMP)
	$(call run_demo,config/demo_bbbc014.yaml)

# Your own screen: a synthesized 5-channel, 384-well Cell Painting-like screen read from its
# LoadData CSV, plate map and MoA table (dataset: loaddata).
demo-screen: $(STAMP)
	$(call run_demo,config/demo_screen.yaml,$(CORES))

# The full suite (what CI runs): end-to-end Snakemake runs, training, SLURM included.
test: $(STAMP)
	$(PY) -m pytest -ra --durations=25 tests

# The inner loop: unit tests only (no end-to-end training, no SLURM), a few minutes.
test-quick: $(STAMP)
	$(PY) -m pytest -ra -m "not slow" tests

# Snakemake's linter (best practices), snakefmt (rule formatting) and ruff (Python); CI runs it.
lint: $(STAMP)
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check .
	$(VENV)/bin/ruff check src tests workflow/scripts benchmarks

# The CPU benchmarks (ratios against a baseline measured in the same run; see README "Measured").
benchmark: $(STAMP)
	$(PY) benchmarks/bench_input_pipeline.py
	$(PY) benchmarks/bench_preprocess.py

# On a GPU machine (after `make install-gpu`): training throughput of the three networks, float32
# and mixed precision, and the full run's implied time (from the metadata once it is downloaded).
BBBC021_METADATA := resources/bbbc021/metadata
bench-gpu: $(STAMP)
	$(PY) benchmarks/bench_training_throughput.py $(if $(wildcard $(BBBC021_METADATA)/BBBC021_v1_image.csv),--metadata-dir $(BBBC021_METADATA),)

# The wheels benchmarks/gpu_check.sh installs offline on a GPU machine without a registry (Keras
# and what it needs beyond that machine's packages; 2.8 MiB). GPU_PYTHON: that machine's Python.
GPU_PYTHON ?= 3.12
GPU_WHEELS ?= benchmarks/wheels
gpu-wheels: $(STAMP)
	$(PY) -m pip download --quiet --only-binary=:all: --no-deps --python-version $(GPU_PYTHON) \
		--platform manylinux_2_28_x86_64 -d $(GPU_WHEELS) keras==3.15.1 namex==0.1.0 optree==0.20.0 typing_extensions==4.16.0
	@ls -l $(GPU_WHEELS)

# On a CUDA machine: swap the CPU build of TensorFlow for the GPU build (same version).
install-gpu: $(STAMP)
	$(PY) -m pip uninstall --yes tensorflow-cpu
	$(PY) -m pip install 'tensorflow[and-cuda]==2.21.0'

clean-demo:
	rm -rf resources/synthetic resources/bbbc021 resources/bbbc014 results/illumination results/tensors results/models results/tables results/benchmarks results/checkpoints results/plots results/report.html results/.report-config logs
