# The README's two commands: `make setup` (everything installed) and `make test` (data, lint, all tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Offline source of CIFAR-10; set it empty (make test ESSL_CIFAR_SOURCE=) to download the official archive.
ESSL_CIFAR_SOURCE ?= ../shared/data/cifar10-jpeg.tar.gz
ESSL_DATA ?= data
export ESSL_DATA

.PHONY: setup data test lint smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -e '.[dev]'
	touch $@

data: setup
	@if [ -f "$(ESSL_DATA)/cifar10/cifar10.npz" ]; then echo "CIFAR-10 cache present in $(ESSL_DATA)"; \
	elif [ -n "$(ESSL_CIFAR_SOURCE)" ]; then $(BIN)/python -m data_scripts.cifar10 --source "$(ESSL_CIFAR_SOURCE)"; \
	else $(BIN)/python -m data_scripts.cifar10; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: data lint
	$(BIN)/python -m pytest

smoke: data
	$(BIN)/python -m essl_core train --recipe cifar10-esimclr --tier smoke

clean:
	rm -rf runs _build .pytest_cache .ruff_cache
