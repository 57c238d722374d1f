"""Checks of the built HTML book (`make book` first; `make test` does it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HTML = REPO / "_build" / "html"


def toc_pages() -> list[str]:
    """The documents of _toc.yml, root first."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]


@pytest.fixture(scope="session")
def html_dir() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail("the HTML book is not built: run `make book` (make test does it first)")
    return HTML
