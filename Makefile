# From a fresh clone, one command each:
#   make train   set up, then train the default recipe on MNIST (downloaded on first use)
#   make test    set up, then run the tests
# Setting up makes a virtual environment in $(VENV) and installs torch first, then mnistlab with its test
# extras. TORCH is the torch to install: by default the CPU build this project's machines pin; where that
# version is not to be had, the newest torch is installed instead. Choose your own with, for example,
# `make test TORCH=torch` (PyPI's newest; on Linux it brings CUDA).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup train test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" || { \
		echo "make: $(TORCH) is not available here; installing the newest torch instead"; \
		$(BIN)/python -m pip install -q "torch>=2.4"; }
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

train: setup
	$(BIN)/mnistlab train

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
