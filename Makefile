# The README's commands: `make report` (main job), `make test`, and on a CUDA machine `make test-gpu`.
# Each installs first; PYTHON=python3 runs test-gpu with an interpreter that already has the packages (no venv).
VENV   ?= .venv
BIN     = $(VENV)/bin
PRESET ?= quick
SEEDS  ?= 0-4
DATASET ?= ml-100k

PYTHON ?= $(BIN)/python

.PHONY: install test test-gpu study report clean-check

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.py settings.ini
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.txt -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# nbdev_export, nbdev_clean and the README (from nbs/index.ipynb) must leave git clean: layerwise/ is generated from nbs/
clean-check: install
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python -c "from layerwise.site import write_readme; write_readme()"
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "nbdev_export/nbdev_clean changed tracked files (edit nbs/, then export and clean):"; git status --porcelain; exit 1; fi

# one torch thread per notebook: nbdev_test runs two at a time on the 2 cores (more threads thrash)
test: clean-check
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing
	$(BIN)/python -m pytest -q tests

report: install
	$(BIN)/layerwise report --preset $(PRESET) --seeds $(SEEDS)

# on a CUDA machine: every experiment notebook at the full preset's code paths with tiny training, and the device tests
test-gpu: $(if $(filter $(BIN)/python,$(PYTHON)),install)
	$(PYTHON) -m pytest -q -m gpu tests/test_gpu.py

# on a CUDA machine: the full study (configs/study.yaml, full preset, seeds 0-4) on every GPU, published into
# results/study/$(DATASET)/ (tracked in git); finished runs are kept, so it continues where it stopped.
# BATCHES=a,b runs only those batches of the plan (default: all)
study: $(if $(filter $(BIN)/python,$(PYTHON)),install)
	$(PYTHON) -c "from layerwise.cli import main; main()" study --dataset $(DATASET) --seeds $(SEEDS) --gpus all $(if $(BATCHES),--batches $(BATCHES))
