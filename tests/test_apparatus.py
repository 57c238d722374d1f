"""Every chapter's teaching apparatus (objectives, key ideas, exercises with solutions, references) is the one
`scripts/apparatus.py` gives, and every citation names an entry of the bibliography."""

import copy
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("apparatus", REPO / "scripts" / "apparatus.py")
apparatus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(apparatus)
CHAPTERS = sorted(p.stem for p in (REPO / "book").glob("*.ipynb"))


def test_every_chapter_has_an_apparatus():
    assert sorted(apparatus.CHAPTERS) == CHAPTERS


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_chapter_holds_the_apparatus_of_the_script(name):
    nb = nbformat.read(REPO / "book" / f"{name}.ipynb", as_version=4)
    expected = apparatus.apparatus(name, copy.deepcopy(nb))
    key = lambda c: (c.id, c.source, c.metadata.get("tags"))  # noqa: E731
    assert [key(c) for c in nb.cells] == [key(c) for c in expected.cells], "run `python scripts/apparatus.py`"
    chapter = apparatus.CHAPTERS[name]
    assert len(chapter["objectives"]) >= 3 and 3 <= len(chapter["exercises"]) <= 5


def test_every_citation_is_in_the_bibliography():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (REPO / "book" / "references.bib").read_text(), flags=re.M))
    text = "".join(c.source for name in CHAPTERS for c in nbformat.read(REPO / "book" / f"{name}.ipynb", 4).cells)
    cited = set(re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text))
    assert cited and cited <= keys, f"not in references.bib: {cited - keys}"
