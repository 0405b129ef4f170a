"""Sphinx configuration: MyST Markdown pages, furo, and the API reference from docstrings."""

from __future__ import annotations

import runpy
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

import resumable

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger(__name__)

project = "resumable"
author = "The resumable authors"
copyright = "the resumable authors"  # noqa: A001 - the name Sphinx reads
release = resumable.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Google-style docstrings; attributes as fields of their class, so each is described once.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = "resumable"


def show_changelog(app: Sphinx, docname: str, source: list[str]) -> None:
    """Build the changelog page from CHANGELOG.md itself; changelog.md only links to it."""
    if docname == "changelog":
        source[0] = (ROOT / "CHANGELOG.md").read_text()


def check_performance_page(app: Sphinx) -> None:
    """Warn (an error with ``-W``) when the performance page is older than the benchmarks."""
    # benchmarks/ is no package: the checker is run from its file.
    freshness = runpy.run_path(str(ROOT / "benchmarks" / "freshness.py"))
    problem = freshness["problem"](Path(app.srcdir) / "performance.md")
    if problem is not None:
        logger.warning(problem, location="performance")


def setup(app: Sphinx) -> None:
    """Register the changelog hook and the performance page's check."""
    app.connect("source-read", show_changelog)
    # At every build, not when the page is read: an unchanged page is not read again.
    app.connect("builder-inited", check_performance_page)
