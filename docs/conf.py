"""Sphinx configuration: MyST Markdown pages, furo, and the API reference from docstrings."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent

project = "resumable"
author = "The resumable authors"
copyright = "the resumable authors"  # noqa: A001 - the name Sphinx reads
release = importlib.metadata.version("resumable")
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


def setup(app: Sphinx) -> None:
    """Register the changelog hook."""
    app.connect("source-read", show_changelog)
