"""Write the Colab install cell (`essl_core.book.install_cell`) into every chapter, as the first code cell
after the title. Run it after changing `repository` in `_config.yml` (when publishing a release)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from essl_core.book import install_cell  # noqa: E402

MARK = '"google.colab" in sys.modules'  # what identifies the cell, whatever its header says


def main() -> int:
    for path in sorted((REPO / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and MARK in "".join(c["source"]))
        lines = install_cell(path.stem).split("\n")
        cell["source"] = [line + "\n" for line in lines[:-1]] + lines[-1:]
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(REPO)}: install cell written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
