import re

import pytest

from .conftest import toc_pages

# Figures each chapter must show (matplotlib PNGs), at least.
MIN_FIGURES = {
    "book/intro": 0,
    "book/invariance_equivariance": 3,
    "book/essl_method": 3,
    "book/cifar10_reproduction": 2,
    "book/imagenet": 2,
    "book/benchmark": 3,
    "book/transformation_study": 5,
    "book/photonics": 5,
    "book/references": 0,
}
# Tables chapters generate as Markdown outputs (rendered as HTML tables, not as raw pipes).
MIN_TABLES = {
    "book/intro": 1,
    "book/invariance_equivariance": 0,
    "book/essl_method": 0,
    "book/cifar10_reproduction": 2,
    "book/imagenet": 1,
    "book/benchmark": 3,
    "book/transformation_study": 1,
    "book/photonics": 3,
    "book/references": 0,
}
ERROR_MARKERS = (
    "Traceback (most recent call last)",
    'class="output traceback"',
    'class="output error"',
    "Error</span>:",
)


@pytest.mark.parametrize("page", toc_pages())
def test_page_exists_without_errors_and_with_its_figures(html_dir, page):
    path = html_dir / f"{page}.html"
    assert path.exists(), f"{page} is in _toc.yml but was not built"
    text = path.read_text()
    for marker in ERROR_MARKERS:
        assert marker not in text, f"{page} shows an error output ({marker})"
    figures = re.findall(r'<img[^>]+src="(?:data:image/png|[^"]*_images/[^"]+\.png)', text)
    assert len(figures) >= MIN_FIGURES[page], f"{page}: {len(figures)} figures"
    assert text.count("<table") >= MIN_TABLES[page], f"{page}: generated tables were not rendered"
    # A table left as text is a paragraph starting with "|" whose next line is the (smart-dashed) rule.
    assert not re.search(r"<p>\|[^<]*\n\|[-—–|]+", text), f"{page} shows a Markdown table as raw text"


def test_pages_need_no_cdn(html_dir):
    for page in toc_pages():
        text = (html_dir / f"{page}.html").read_text()
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', text)
        remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
        assert not remote, f"{page} loads scripts from the network: {remote}"


def test_colab_launch_buttons_point_at_the_configured_repository(html_dir):
    import yaml

    from .conftest import REPO

    repository = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    repo_path, pin = repository["url"].removeprefix("https://github.com/"), repository["branch"]
    text = (html_dir / "book" / "essl_method.html").read_text()
    assert f"colab.research.google.com/github/{repo_path}/blob/{pin}/book/essl_method.ipynb" in text  # the pin


@pytest.mark.parametrize("page", [p for p in toc_pages() if p != "book/references"])
def test_every_chapter_teaches_with_objectives_exercises_and_links(html_dir, page):
    text = (html_dir / f"{page}.html").read_text()
    assert "Learning objectives" in text and 'id="exercises"' in text and 'id="key-ideas"' in text
    assert text.count("Solution") >= 3, f"{page}: fewer than three exercises with solutions"
    assert 'class="reference external"' in text, f"{page}: no link out of the book"
    assert 'href="references.html#' in text, f"{page}: cites nothing in the bibliography"


def test_the_bibliography_lists_every_work_with_a_link(html_dir):
    text = (html_dir / "book" / "references.html").read_text()
    entries = re.findall(r'<div class="citation" id="', text) or re.findall(r'<dt class="label" id="', text)
    assert len(entries) >= 10, f"{len(entries)} entries in the bibliography"
    assert text.count("https://arxiv.org/abs/") >= 8


@pytest.mark.parametrize("page", toc_pages())
def test_no_code_line_is_cut_off(html_dir, page):
    import html

    text = (html_dir / f"{page}.html").read_text()
    inputs = re.findall(r'<div class="cell_input[^"]*">.*?<pre>(.*?)</pre>', text, flags=re.S)
    lines = [line for block in inputs for line in html.unescape(re.sub(r"<[^>]+>", "", block)).splitlines()]
    long = [line for line in lines if len(line) > 88]
    assert not long, f"{page}: code lines wider than the page's 88 columns: {long[:3]}"
