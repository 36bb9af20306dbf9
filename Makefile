# The two commands of the README: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
STAMP := $(VENV)/.cellmoa-installed
# The demo trains on the CPU: run as many one-thread training jobs side by side as there are cores.
CORES ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: install lock demo demo-bbbc014 demo-cells demo-screen test test-quick lint docs config-docs benchmark bench-real bench-gpu install-gpu gpu-wheels clean-demo

# Everything (the base install, [train], [jax], [dev], [docs]) at the exact versions of
# requirements.lock, checked against its hashes, then cellmoa itself (editable, its dependencies
# already there). `pip install .` alone gives the base: the profile commands, without TensorFlow.
LOCK := requirements.lock
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Regenerate requirements.lock from pyproject.toml's ranges (uv keeps the versions already locked
# unless a range excludes them; `make lock UV_FLAGS=--upgrade` takes the newest the ranges admit,
# `UV_FLAGS='--upgrade-package pandas'` one package). Then update envs/*.yaml to the new versions:
# tests/test_envs.py checks them. uv is needed only here, not by `make install`.
UV_VERSION ?= 0.13.9
UV_FLAGS ?=
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/uv pip compile pyproject.toml \
		--extra train --extra jax --extra dev --extra docs --universal --python-version 3.11 \
		--generate-hashes --quiet $(UV_FLAGS) --output-file $(LOCK)

# The exact version requirements.lock gives a package (for the GPU targets below).
locked = $(shell sed -n 's/^$(1)==\([^ ;]*\).*/\1/p' $(LOCK) | head -n 1)

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

# The demo on single-cell crops (preprocessing.crops.mode: cells): config/demo_cells.yaml changes
# config/demo.yaml (both given, in that order).
demo-cells: $(STAMP)
	$(call run_demo,config/demo.yaml config/demo_cells.yaml)

# Your own screen: a synthesized 5-channel, 384-well Cell Painting-like screen read from its
# LoadData CSV, plate map and MoA table (dataset: loaddata).
demo-screen: $(STAMP)
	$(call run_demo,config/demo_screen.yaml,$(CORES))

# The full suite (what CI runs): the three tiers (pyproject's markers: unit, workflow, e2e) over
# tests/ and the docstring examples of src/cellmoa; end-to-end Snakemake runs, training, SLURM.
test: $(STAMP)
	$(PY) -m pytest -ra --durations=25

# The inner loop: the unit tier (in-process: no Snakemake, no subprocess, no training run) and the
# docstring examples, under 3 minutes.
test-quick: $(STAMP)
	$(PY) -m pytest -ra -m unit

# Snakemake's linter (best practices), snakefmt (rule formatting), ruff (Python: lint and format);
# CI runs it. The layer contract of src/cellmoa is a unit test (tests/test_layers.py).
RUFF_PATHS := src tests workflow/scripts benchmarks tools
lint: $(STAMP)
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check .
	$(VENV)/bin/ruff check $(RUFF_PATHS)
	$(VENV)/bin/ruff format --check $(RUFF_PATHS)

# The documentation site (docs/, mkdocs.yml) into site/: open site/index.html. CI runs it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# docs/configuration.md from workflow/schemas/config.schema.yaml (tests/test_docs.py checks they agree).
config-docs: $(STAMP)
	$(PY) tools/config_reference.py

# The CPU benchmarks (ratios against a baseline measured in the same run; see docs/benchmarks.md).
benchmark: $(STAMP)
	$(PY) benchmarks/bench_input_pipeline.py
	$(PY) benchmarks/bench_preprocess.py

# Post-processing chains on the real BBBC021 CellProfiler well profiles in ../shared/profiles/ (what
# the named chain `cellprofiler` was chosen from; docs/benchmarks.md). About a minute on 2 cores.
bench-real: $(STAMP)
	$(PY) benchmarks/bench_profiles_real.py --named
	$(PY) benchmarks/bench_predict_profiles_real.py
	$(PY) benchmarks/bench_baseline_real.py

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
		--platform manylinux_2_28_x86_64 -d $(GPU_WHEELS) keras==$(call locked,keras) \
		namex==$(call locked,namex) optree==$(call locked,optree) typing-extensions==$(call locked,typing-extensions)
	@ls -l $(GPU_WHEELS)

# On a CUDA machine: swap the CPU build of TensorFlow for the GPU build (same version).
install-gpu: $(STAMP)
	$(PY) -m pip uninstall --yes tensorflow-cpu
	$(PY) -m pip install 'tensorflow[and-cuda]==$(call locked,tensorflow-cpu)'

clean-demo:
	rm -rf resources/synthetic resources/bbbc021 resources/bbbc014 results/illumination results/tensors results/models results/tables results/benchmarks results/checkpoints results/plots results/report.html results/.report-config logs
