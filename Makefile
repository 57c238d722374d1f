# The README's two commands: `make setup` (everything installed) and `make test` (data, lint, all tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Local copies of the data, used when they exist (else the official archives are downloaded, md5-checked).
ESSL_CIFAR_SOURCE ?= ../shared/data/cifar10-jpeg.tar.gz
ESSL_IMAGENETTE_SOURCE ?= ../shared/data/imagenette2-224.tar.gz
ESSL_DATA ?= $(CURDIR)/data
export ESSL_DATA

.PHONY: setup data test lint smoke book book-publish vendor clean bench gpu-carry gpu-run

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -e '.[dev]'
	touch $@

data: setup
	@if [ -f "$(ESSL_DATA)/cifar10/cifar10.npz" ]; then echo "CIFAR-10 cache present in $(ESSL_DATA)"; \
	elif [ -e "$(ESSL_CIFAR_SOURCE)" ]; then $(BIN)/python -m data_scripts.cifar10 --source "$(ESSL_CIFAR_SOURCE)"; \
	else echo "no local CIFAR-10 copy at '$(ESSL_CIFAR_SOURCE)': downloading the official archive (163 MB)"; \
		$(BIN)/python -m data_scripts.cifar10; fi
	@if [ -f "$(ESSL_DATA)/imagenet/imagenette-64px.npz" ]; then echo "Imagenette cache present in $(ESSL_DATA)"; \
	elif [ -e "$(ESSL_IMAGENETTE_SOURCE)" ]; then \
		$(BIN)/python -m data_scripts.imagenet --source "$(ESSL_IMAGENETTE_SOURCE)" --side 64; \
	else echo "no local Imagenette copy at '$(ESSL_IMAGENETTE_SOURCE)': downloading the official imagenette2-320.tgz"; \
		$(BIN)/python -m data_scripts.imagenet --side 64; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Everything: lint, the library's tests, the chapters under nbval (smoke), the HTML book (-W) and its checks
# in headless Chromium. `pytest tests --ignore=tests/book` alone is the quick loop while developing.
test: data lint
	$(BIN)/python -m pytest tests --ignore=tests/book
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider book/
	$(MAKE) book
	$(BIN)/python -m pytest tests/book

# Widget JavaScript and MathJax for offline pages (no CDN at view time), from the npm registry.
HTML_MANAGER := @jupyter-widgets/html-manager@1.0.15
MATHJAX := mathjax@3.2.2
VENDOR := _vendor
vendor: $(VENDOR)/.done
$(VENDOR)/.done:
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/npm $(VENDOR)/html-manager $(VENDOR)/mathjax
	cd $(VENDOR)/npm && npm pack -q --silent $(HTML_MANAGER) $(MATHJAX) >/dev/null
	tar xzf $(VENDOR)/npm/jupyter-widgets-html-manager-*.tgz -C $(VENDOR)/html-manager --strip-components=2 \
		--exclude='*amd*' --exclude='*.map' package/dist
	tar xzf $(VENDOR)/npm/mathjax-*.tgz -C $(VENDOR)/mathjax --strip-components=2 package/es5
	rm -rf $(VENDOR)/npm && touch $@

# The HTML book, executed at $(ESSL_MODE) (default smoke), warnings as errors. Open _build/html/index.html.
ESSL_MODE ?= smoke
export ESSL_MODE
book: data vendor
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . -W -n --keep-going

# The published book: the same chapters, live demonstrations at the smoke tier, and the committed cpu-tier
# encoders (book/encoders/) with their records where the test build trains 2-epoch models.
book-publish: data vendor
	rm -rf _build/html _build/.doctrees
	ESSL_BOOK=published $(BIN)/jupyter-book build . -W -n --keep-going

smoke: data
	$(BIN)/python -m essl_core train --recipe cifar10-esimclr --tier smoke

# The side-by-side benchmark on this machine (CPU here): reference pipeline vs fast path, at the cpu tier.
bench: data
	$(BIN)/python -m essl_core bench --tier cpu --record-dir book/results

# GPU work, when the device tool lends a machine. `make gpu-carry` here fills .gpu/ (git-ignored; carry it):
# the CIFAR-10 copy, the 64-px Imagenette cache as JPEG (31 MiB) and the commit being run (the machine may get no
# .git). `make gpu-carry KORNIA=1` adds kornia wheels for Python 3.12 (7 MB) for the benchmark's kornia
# comparison, measured on an H200 already (book/results/bench-*-full-cuda.json); without them that one comparison
# is recorded as failed. The device tool moves at most 64 MiB: the tree plus .gpu/ is about 63 MB with the
# committed encoders, so the wheels fit only if something else stays behind. Then `bash scripts/gpu-run.sh`
# (= `make gpu-run`) there runs the benchmark and the budgeted full-recipe runs with the machine's own python3
# and writes every record to $OUT; `bash scripts/gpu-run.sh --experiment imagenet` is the second command.
KORNIA ?=
gpu-carry: setup
	rm -rf .gpu && mkdir -p .gpu/whl && cp $(ESSL_CIFAR_SOURCE) .gpu/cifar10-jpeg.tar.gz
	$(BIN)/python -m data_scripts.imagenet --source "$(ESSL_IMAGENETTE_SOURCE)" --side 64 --encoding jpeg --root .gpu/data
	$(BIN)/python -c "import json; from essl_core.results import git_commit; json.dump(git_commit(), open('.gpu/commit.json', 'w'))"
	$(if $(KORNIA),$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/whl kornia==0.9.0 kornia-rs==0.2.0)
gpu-run:
	bash scripts/gpu-run.sh

clean:
	rm -rf runs _build .pytest_cache .ruff_cache test-artifacts
