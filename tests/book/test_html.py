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

    url = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]
    repo_path = url.removeprefix("https://github.com/")
    text = (html_dir / "book" / "essl_method.html").read_text()
    assert f"colab.research.google.com/github/{repo_path}/blob/main/book/essl_method.ipynb" in text
