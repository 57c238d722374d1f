"""The chapters' structure: title, running note, guarded Colab install, GPU metadata, no committed outputs."""

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))


def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    listed = {toc["root"], *(c["file"] for c in toc["chapters"])}
    notebooks = {f for f in listed if (REPO / f"{f}.ipynb").exists()}
    assert {f"book/{p.stem}" for p in CHAPTERS} == notebooks
    assert all((REPO / f"{f}.md").exists() for f in listed - notebooks)  # the references page


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_structure(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    assert any("Running this chapter" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert nb["metadata"]["accelerator"] == "GPU"
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    install = [c for c in code if "google.colab" in c]
    assert len(install) == 1 and 'if "google.colab" in sys.modules' in install[0]  # its text: test_colab_install
    assert not re.search(r"\btorch(vision)?\s*[=<>~!]=", install[0]), "never pin torch in the Colab cell"
    assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), "commit notebooks without outputs"
    assert any("book.banner()" in c for c in code), "each chapter prints its tier and hardware"


def test_the_intro_links_every_chapter_of_the_table_of_contents():
    intro = "".join("".join(c["source"]) for c in json.loads((REPO / "book" / "intro.ipynb").read_text())["cells"])
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    pages = [(c["file"], ".ipynb" if (REPO / f"{c['file']}.ipynb").exists() else ".md") for c in toc["chapters"]]
    missing = [page for page, suffix in pages if f"]({Path(page).name}{suffix})" not in intro]
    assert not missing, f"the intro's roadmap does not link {missing}"
