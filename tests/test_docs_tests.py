"""Every test the docs show passes as shown, pasted into a project of its own.

The Sybil run of the docs (the root conftest.py) only defines a page's test functions. Here
each block that defines tests becomes a test file of a fresh project (a block that shows a
part of an example file brings the whole file), in the folder of the example Actor (laid
out as ``apify create`` lays one out, started as ``python -m src``), and runs under pytest
with no configuration of the project's: pytest-asyncio in its default, strict mode, and this
package's pytest plugin as installing it registers it.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"(?:^<!-- example: (?P<path>\S+)[^>]*-->\n)?^```python\n(?P<body>.*?)^```", re.M | re.S
)


def defined_tests(source: str) -> list[str]:
    """The names of the top-level test functions *source* defines."""
    return [
        node.name
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    ]


def shown_tests() -> dict[str, str]:
    """Each test file the docs show, by the name it gets in the project: a block that
    defines tests, or the whole example file a block of tests is a part of."""
    files: dict[str, str] = {}
    for page in PAGES:
        for number, block in enumerate(_BLOCK.finditer(page.read_text()), start=1):
            if not defined_tests(block.group("body")):
                continue
            path = block.group("path")
            if path is not None:
                files[f"test_{Path(path).stem}.py"] = (ROOT / path).read_text()
            else:
                files[f"test_{page.stem}_{number}.py"] = block.group("body")
    return files


def test_the_docs_show_tests() -> None:
    """The pages that show tests are found (so the test below cannot pass on nothing)."""
    names = sorted(shown_tests())

    assert "test_testing_example.py" in names
    assert [True, True, True] == [
        any(name.startswith(f"test_{page}_") for name in names)
        for page in ("apify", "spot", "testing")
    ]


@pytest.mark.timeout(300)
def test_every_test_shown_in_the_docs_passes_in_a_project_of_its_own(tmp_path: Path) -> None:
    """Pasted as shown into the example Actor's folder, as an author tests an Actor, and run
    with pytest's and pytest-asyncio's defaults, every test of the docs passes."""
    files = shown_tests()
    shutil.copytree(
        ROOT / "examples" / "apify_actor",
        tmp_path,
        # The folder is a package of this repository's tests only (its `__init__.py`).
        ignore=lambda folder, names: [
            name
            for name in names
            if Path(folder) == ROOT / "examples" / "apify_actor"
            and name in ("wheels", "storage", "__init__.py")
        ],
        dirs_exist_ok=True,
    )
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    # Only the fixture loop scope is set, which pytest-asyncio asks every project to choose.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    expected = sum(len(defined_tests(source)) for source in files.values())

    assert 0 == result.returncode, result.stdout[-5000:] + result.stderr[-2000:]
    assert f"{expected} passed" in result.stdout, result.stdout[-2000:]
