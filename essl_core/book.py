"""What the chapters share: the tier, paths, a runtime banner, and trained encoders: at the selected tier, or
the committed ones in the published build."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from .device import resolve_device
from .errors import EsslError
from .layout import RUNS, pretrain_run_dir
from .methods import Method
from .published import load_published
from .recipes import get_recipe
from .results import device_name
from .runs import load_trained_model, pretrain
from .tiers import ENV, TIERS, default_tier

REPO = Path(__file__).resolve().parent.parent
ENCODERS = REPO / "book" / "encoders"  # the trained encoders committed for the published build
BUILD_ENV = "ESSL_BOOK"  # "published" for the published build (`make book-publish`); unset for the test build
PUBLISHED_TIER = "cpu"  # the tier whose trained encoders the published build shows
# The data each chapter's install cell prepares (a chapter not named here needs CIFAR-10).
CHAPTER_DATA = {"imagenet": "imagenet", "photonics": None}
_PREPARE = {
    "cifar10": ("from essl_core.data import cache_path", "cache_path()", "data_scripts.cifar10"),
    "imagenet": (
        "from essl_core.imagenet_data import cache_path",
        'cache_path("imagenette", 64)',
        "data_scripts.imagenet --side 64",
    ),
}


def tier() -> str:
    """The tier chapters run at: $ESSL_MODE (smoke, cpu or full), default smoke."""
    return default_tier()


def publishing() -> bool:
    """Whether this is the published build: the chapters run their live demonstrations at the smoke tier but
    show the committed cpu-tier encoders (book/encoders/) and their records instead of training afresh."""
    build = os.environ.get(BUILD_ENV, "")
    if build not in ("", "published"):
        raise EsslError(f"{BUILD_ENV}={build!r}: set it to 'published' for the published build, or leave it unset")
    return build == "published"


def results_dir() -> Path:
    """book/results: the committed result records the chapters read."""
    return REPO / "book" / "results"


def runs_dir() -> Path:
    return REPO / RUNS


def banner() -> str:
    """Which tier runs, on what hardware, with which software: printed at the top of every chapter."""
    dev = resolve_device()
    lines = [
        f"tier: {tier()} (set {ENV}={'|'.join(TIERS)})",
        f"device: {device_name(dev)}",
        f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, Python {sys.version.split()[0]}",
    ]
    if publishing():
        lines.append(f"build: published (trained {PUBLISHED_TIER}-tier encoders from book/encoders)")
    if tier() == "full" and dev.type != "cuda":
        lines.append("WARNING: the full tier is the paper's 800-epoch setting and needs a GPU.")
    return "\n".join(lines)


def pretrained(recipe_name: str, quiet: bool = True) -> tuple[Method, dict]:
    """The model of `recipe_name` trained at the current tier, and its result record.

    At the smoke tier it is trained afresh (seconds). At the cpu and full tiers an existing run in
    runs/RECIPE-TIER-s42 (the CLI's default directory) is reused, resumed or started. In the published build it
    is the committed cpu-tier encoder, loaded, never trained.
    """
    if publishing():
        found = load_published(recipe_name, PUBLISHED_TIER, ENCODERS, results_dir(), resolve_device())
        if found is None:
            raise EsslError(
                f"no committed {PUBLISHED_TIER}-tier encoder of {recipe_name} in {ENCODERS}; "
                "export a finished run with `python -m essl_core export-encoder`"
            )
        return found
    t = tier()
    recipe = get_recipe(recipe_name, t)
    run_dir = pretrain_run_dir(runs_dir() / "book" if t == "smoke" else runs_dir(), recipe.name, t, recipe.seed)
    record = pretrain(recipe, run_dir, restart=t == "smoke", progress=not quiet)
    return load_trained_model(run_dir, resolve_device()), record


def published_version() -> tuple[str, str]:
    """The repository and the pinned version the published book belongs to: `repository.url` and
    `repository.branch` of `_config.yml`, the one place that sets them (Colab's launch links use them too). The
    version is a release tag or a full commit hash, never a moving branch, so a reader runs exactly the code
    that was published, whoever controls the address later."""
    import yaml

    repository = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    return repository["url"], str(repository["branch"])


def install_cell(chapter: str) -> str:
    """The first code cell of `chapter` (a notebook's stem): on Colab it fetches the book's repository at the
    published version, makes the library importable in this very interpreter and prepares the chapter's data.
    `scripts/install_cells.py` writes it into every chapter; a test checks them and runs them."""
    url, version = published_version()
    data = CHAPTER_DATA.get(chapter, "cifar10")
    lines = [
        "# Setup. Choose the tier: smoke (minutes; shows the code runs), colab (the full",
        "# network, about half an hour per run on a Colab GPU, an estimate), cpu (an hour per",
        "# run on 2 cores) or full (the paper). On Colab, fetch the book's repository at the",
        "# version this page belongs to, make its library importable in this interpreter and",
        "# prepare the data (torch and the rest are Colab's own, never pinned here). Written",
        "# by scripts/install_cells.py from _config.yml; the ESSL_BOOK_* variables let a",
        "# test run it offline.",
        "import os",
        "import sys",
        "",
        'os.environ.setdefault("ESSL_MODE", "smoke")  # the tier, unless already set',
        f'REPOSITORY, VERSION = "{url}", "{version}"',
        'if "google.colab" in sys.modules or os.environ.get("ESSL_BOOK_INSTALL"):',
        '    book_root = os.environ.get("ESSL_BOOK_DIR", "/content/essl-book")',
        "    if not os.path.exists(book_root):  # the pinned tag or commit, and nothing else",
        '        source = os.environ.get("ESSL_BOOK_SOURCE", REPOSITORY)',
        '        version = os.environ.get("ESSL_BOOK_VERSION", VERSION)',
        "        !git init -q {book_root}",
        "        !cd {book_root} && git fetch -q --depth 1 {source} {version}",
        "        !cd {book_root} && git checkout -q FETCH_HEAD",
        "    sys.path.insert(0, book_root)  # importable now (pip install -e needs a restart)",
        '    os.environ.setdefault("ESSL_DATA", f"{book_root}/data")',
    ]
    if data:
        imports, path, command = _PREPARE[data]
        lines += [
            f"    {imports}",
            "",
            f"    if not {path}.exists():",
            f"        !cd {{book_root}} && {{sys.executable}} -m {command}",
        ]
    lines.append('    os.chdir(f"{book_root}/book")')
    return "\n".join(lines)
