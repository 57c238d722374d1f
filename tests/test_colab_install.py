"""The Colab install cell: every chapter has the one written from `_config.yml`, and it works in a fresh
interpreter where the library is not installed (as on Colab): fetched from a local copy of this repository
(no network), importable at once in the same interpreter, with the chapter's data found where it was prepared."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from essl_core.book import REPO, install_cell

CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))
# Runs a cell as a notebook would (IPython: `!` shell lines, `{expr}` expansion), then imports the library.
RUNNER = """
import sys
from IPython.core.interactiveshell import InteractiveShell

InteractiveShell.instance().run_cell(open(sys.argv[1]).read()).raise_error()
import data_scripts
import essl_core

print(essl_core.__file__, data_scripts.__file__, sep="\\n")
"""


def chapter_cell(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return next(src for c in cells if '"google.colab" in sys.modules' in (src := "".join(c["source"])))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_the_written_install_cell(path):
    assert chapter_cell(path) == install_cell(path.stem), "run `python scripts/install_cells.py`"


def test_the_published_version_is_a_pin_that_exists():
    """A branch name moves (and on an address that is not ours, anyone could move it): the install cell fetches a
    release tag or a full commit hash, and it must be one this repository holds."""
    import re

    from essl_core.book import published_version

    version = published_version()[1]
    assert version not in ("main", "master"), "a branch moves: pin a release tag or a full commit hash"
    tags = subprocess.run(["git", "tag", "--list"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not re.fullmatch(r"[0-9a-f]{40}", version):
        if not tags:
            pytest.skip(f"the pin is tag {version!r}, and this clone holds no tags to check it against")
        assert version in tags, f"{version!r} is neither a tag of this repository nor a full commit hash"
    found = subprocess.run(["git", "cat-file", "-e", f"{version}^{{commit}}"], cwd=REPO, capture_output=True)
    assert found.returncode == 0, f"{version} is not a commit of this repository"


@pytest.mark.parametrize("chapter", ["intro", "imagenet", "photonics"])
def test_the_install_cell_makes_the_library_importable_in_the_same_interpreter(
    chapter, tmp_path, cifar_root, imagenette_root
):
    (tmp_path / "cell.py").write_text(chapter_cell(REPO / "book" / f"{chapter}.ipynb"))
    (tmp_path / "runner.py").write_text(RUNNER)
    book_root = tmp_path / "essl-book"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    env = {
        **os.environ,
        # -S and this path: the packages without their .pth hooks, so no editable install of essl_core is seen.
        "PYTHONPATH": os.pathsep.join(site.getsitepackages()),
        "ESSL_BOOK_INSTALL": "1",
        "ESSL_BOOK_SOURCE": str(REPO),
        # This commit's library and chapters, not the last release's: what the test is about is this code.
        "ESSL_BOOK_VERSION": head,
        "ESSL_BOOK_DIR": str(book_root),
        "ESSL_DATA": str(imagenette_root if chapter == "imagenet" else cifar_root),
    }
    proc = subprocess.run([sys.executable, "-S", "runner.py", "cell.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    library, scripts = proc.stdout.strip().splitlines()[-2:]
    assert Path(library) == book_root / "essl_core" / "__init__.py"
    assert Path(scripts) == book_root / "data_scripts" / "__init__.py"
    assert (book_root / "book" / f"{chapter}.ipynb").exists()
