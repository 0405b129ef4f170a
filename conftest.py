"""Run the Python blocks of the README and of every page in docs/ as tests, with Sybil.

Each page is one namespace: its blocks run in order, each once, so a block may use what an
earlier block of the page defined. Top-level ``await`` works, and the blocks of a page share
one event loop. A page runs in a fresh temporary working directory, so a job's default
``FileStore(".resumable")`` lands there.

Two comments, invisible where the Markdown is rendered, steer the tests:

- ``<!-- skip: next "why" -->`` (Sybil's own) skips the next block: one that needs a
  server, an API, or is a fragment.
- ``<!-- example: PATH [PART] -->`` says that the next fenced block shows the file PATH of
  the repository, or the part of it between the comments ``# [docs: PART]`` and
  ``# [docs: end]``, or its top-level function or class PART. The test fails unless the
  block is that code exactly, so neither can change without the other. For a Python file
  it then runs the file as a module (not as ``__main__``; a file of a package is imported
  by its name) into the page's namespace, so the block that follows runs among the names
  it uses.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import importlib
import inspect
import os
import re
import runpy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent

_RUNNER = "__docs_runner__"
_SANDBOX = "__docs_sandbox__"

_EXAMPLE = re.compile(r"^<!-- example: (?P<path>\S+)(?: (?P<part>[^>]+?))? -->\n", re.MULTILINE)
_FENCE = re.compile(
    r"\s*^(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL
)


def run_block(example: Example) -> None:
    """Run one Python block in its page's namespace, awaiting it if it awaits at top level."""
    # Blank lines first, so that a traceback points at the block's line in the page.
    source = "\n" * (example.line + example.parsed.line_offset) + example.parsed
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    # eval, not exec: with top-level await the code object is a coroutine to run.
    result = eval(code, example.namespace)  # noqa: S307 - the docs' own code blocks
    if code.co_flags & inspect.CO_COROUTINE:
        example.namespace[_RUNNER].run(result)
    example.namespace.pop("__builtins__", None)


def example_part(path: Path, part: str | None) -> str:
    """Return the text of *path*, or of its part *part* (marked, or a top-level definition)."""
    text = path.read_text()
    if part is None:
        return text.rstrip("\n")
    lines = text.splitlines()
    marker = f"# [docs: {part}]"
    if marker in (line.strip() for line in lines):
        start = next(i for i, line in enumerate(lines) if line.strip() == marker) + 1
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == "# [docs: end]")
        return "\n".join(lines[start:end]).strip("\n")
    for node in ast.parse(text).body:
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == part
        ):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            return "\n".join(lines[first - 1 : node.end_lineno])
    raise LookupError(f"{path} has no '{marker}' comment and no top-level {part!r}")


def check_example(example: Example) -> None:
    """Fail unless the block after the comment is the example's code; then load the example."""
    path, part, shown = example.parsed
    expected = example_part(ROOT / path, part)
    if shown != expected:
        what = f"{path}" if part is None else f"the part {part!r} of {path}"
        diff = "\n".join(
            difflib.unified_diff(
                expected.splitlines(), shown.splitlines(), what, example.path, lineterm=""
            )
        )
        raise AssertionError(
            f"The block after line {example.line} of {example.path} is not {what}; "
            f"copy one to the other:\n{diff}"
        )
    if path.endswith(".py"):
        example.namespace.update({k: v for k, v in load(path).items() if not k.startswith("__")})


def load(path: str) -> dict[str, Any]:
    """Run the example file *path* as a module; return its names.

    A file of a package (an Actor's ``src/``, with its relative imports) is imported by its
    name from the repository's root; any other file is run by its path.
    """
    if (ROOT / path).with_name("__init__.py").exists():
        return vars(importlib.import_module(path.removesuffix(".py").replace("/", ".")))
    return runpy.run_path(str(ROOT / path), run_name="__docs_example__")


def parse_examples(document: Document) -> Iterator[Region]:
    """Find the ``<!-- example: ... -->`` comments of a page and the block each names."""
    for found in _EXAMPLE.finditer(document.text):
        block = _FENCE.match(document.text, found.end())
        if block is None:
            raise ValueError(
                f"{document.path}: the comment {found.group(0).strip()!r} is not followed by "
                "a fenced code block"
            )
        shown = block.group("body").rstrip("\n")
        parsed = (found.group("path"), found.group("part"), shown)
        yield Region(found.start(), found.end(), parsed, check_example)


def enter_page(namespace: dict[str, Any]) -> None:
    """Give a page a temporary working directory, a quiet terminal and an event loop."""
    sandbox = tempfile.mkdtemp(prefix="resumable-docs-")
    namespace[_SANDBOX] = (Path.cwd(), os.environ.get("RESUMABLE_PROGRESS"), sandbox)
    os.chdir(sandbox)
    os.environ["RESUMABLE_PROGRESS"] = "0"
    namespace[_RUNNER] = asyncio.Runner()


def leave_page(namespace: dict[str, Any]) -> None:
    """Close the page's event loop and put the working directory and environment back."""
    namespace.pop(_RUNNER).close()
    cwd, progress, sandbox = namespace.pop(_SANDBOX)
    os.chdir(cwd)
    if progress is None:
        os.environ.pop("RESUMABLE_PROGRESS", None)
    else:
        os.environ["RESUMABLE_PROGRESS"] = progress
    shutil.rmtree(sandbox, ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser("python", run_block), SkipParser(), parse_examples],
    patterns=["README.md", "docs/*.md"],
    setup=enter_page,
    teardown=leave_page,
).pytest()
