"""The docs read whole as plain Markdown, name the whole API, and their example blocks are checked.

The Python blocks of the pages themselves run through Sybil (see ``conftest.py`` at the root);
these tests pin what that machinery and the pages promise.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from sybil import Document

import resumable
import resumable.apify
import resumable.cloud
import resumable.redis
import resumable.sql
import resumable.testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SITE_ONLY = {"api-docstrings.md"}  # the autodoc page; api.md carries the same API in Markdown
DIRECTIVES = re.compile(
    r"```\{(literalinclude|include|eval-rst|autoclass|automodule)\}|^\.\. auto", re.M
)


SPHINX_ONLY = re.compile(
    r"\{(doc|class|func|meth|attr|mod|ref)\}`|```\{(warning|note|tip|important)\}|^: ", re.M
)
"""MyST syntax that a code host or a terminal shows as raw text: roles, boxes, definitions."""


@pytest.mark.parametrize("page", [p for p in PAGES if p.name not in SITE_ONLY], ids=str)
def test_page_reads_as_plain_markdown(page: Path) -> None:
    """No page people read relies on Sphinx roles, admonition boxes or definition lists."""
    found = [m.group(0) for m in SPHINX_ONLY.finditer(page.read_text())]

    assert [] == found


CRAWLER_EXTRAS = {
    "BeautifulSoupCrawler": "beautifulsoup",
    "ParselCrawler": "parsel",
    "PlaywrightCrawler": "playwright",
}
"""Crawlee's crawlers that need an extra of Crawlee's, which ours do not bring."""


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=str)
def test_a_page_that_shows_a_crawler_says_what_to_install_for_it(page: Path) -> None:
    """A page whose code uses a Crawlee crawler that needs an extra of Crawlee's tells the
    reader to install it: `resumable-jobs[apify]` does not bring a crawler's parser."""
    text = page.read_text()
    missing = [
        f"crawlee[{extra}]"
        for crawler, extra in CRAWLER_EXTRAS.items()
        if re.search(rf"\b{crawler}\b", text) and f"crawlee[{extra}]" not in text
    ]

    assert [] == missing


def load_docs_conftest() -> ModuleType:
    """Import the root ``conftest.py`` under its own name (``tests/`` has a conftest too)."""
    spec = importlib.util.spec_from_file_location("docs_conftest", ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", [p for p in PAGES if p.name not in SITE_ONLY], ids=str)
def test_page_carries_its_code(page: Path) -> None:
    """No page people read pulls code or API text in with a Sphinx directive."""
    found = [m.group(0) for m in DIRECTIVES.finditer(page.read_text())]

    assert [] == found


@pytest.mark.parametrize(
    "module",
    [
        resumable,
        resumable.apify,
        resumable.cloud,
        resumable.redis,
        resumable.sql,
        resumable.testing,
    ],
    ids=repr,
)
def test_api_page_names_every_public_name(module: ModuleType) -> None:
    """Every name a public module exports is described on the Markdown API page."""
    text = (DOCS / "api.md").read_text()
    missing = [name for name in module.__all__ if not re.search(rf"`[^`\n]*\b{name}\b", text)]

    assert [] == missing


def write_page(tmp_path: Path, block: str) -> Path:
    """Write a page that shows *block* as the ``job`` part of the demo example."""
    page = tmp_path / "page.md"
    page.write_text(f"<!-- example: examples/demo.py job -->\n```python\n{block}\n```\n")
    return page


def test_a_block_that_differs_from_its_example_fails(tmp_path: Path) -> None:
    """A page block that no longer equals the example part it names fails, with the diff."""
    docs = load_docs_conftest()
    shown = docs.example_part(ROOT / "examples" / "demo.py", "job").replace(
        "ITEMS = 40", "ITEMS = 4"
    )
    document = Document.parse(str(write_page(tmp_path, shown)), docs.parse_examples)
    (example,) = document.examples()

    with pytest.raises(AssertionError, match="copy one to the other") as failure:
        example.evaluate()

    assert "-ITEMS = 40\n+ITEMS = 4" in str(failure.value)


def test_a_block_equal_to_its_example_loads_the_example(tmp_path: Path) -> None:
    """A block equal to its example part passes and gets the example's names to run with."""
    docs = load_docs_conftest()
    shown = docs.example_part(ROOT / "examples" / "demo.py", "job")
    document = Document.parse(str(write_page(tmp_path, shown)), docs.parse_examples)
    (example,) = document.examples()

    example.evaluate()

    assert 40 == document.namespace["ITEMS"]
    assert "process" in document.namespace


def test_an_example_part_can_be_a_top_level_definition() -> None:
    """A part without ``# [docs: ...]`` comments is the function or class of that name."""
    docs = load_docs_conftest()

    part = docs.example_part(ROOT / "examples" / "testing_example.py", "copy_rows")

    assert part.startswith("@resumable\nasync def copy_rows(")
    assert part.endswith("yield start + len(batch)")
