"""The package as users install it: its name on the index, its version, the example images.

The name ``resumable`` on the package index belongs to an unrelated project; ours is
``resumable-jobs``. These tests keep every install hint in the repository on our name, and
prove that the example Actors' images install the wheel built from this repository whatever
the index holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import resumable
from resumable._distribution import DISTRIBUTION, install_hint

ROOT = Path(__file__).resolve().parent.parent
ACTORS = ["apify_actor", "crawlee_shop"]
OTHER = "resumable"
"""The index's project of that name: a resumable.js upload client."""

# Spelled from pieces, so that this file does not match them itself.
OTHER_HINTS = re.compile(
    rf"(?<![\w-]){OTHER}\[|pip install (?:-\S+ )*[\"']?{OTHER}(?![\w.-])", re.IGNORECASE
)


def repository_files() -> list[Path]:
    """The repository's files: tracked, and new ones not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know which files belong to the repository")
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_text_in_the_repository_installs_the_other_project() -> None:
    """No README, doc, example, requirement, Dockerfile, workflow or message tells a user to
    install the index's other project of our import name, with an extra or without."""
    found = []
    for path in repository_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OTHER_HINTS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")

    assert [] == found


def test_the_hint_pattern_catches_what_it_must() -> None:
    """The pattern of the test above matches the hints of the other project's name, and none
    of ours."""
    theirs = [f'pip install "{OTHER}[apify]"', f"pip install -q {OTHER}", f"{OTHER}[sql]"]
    ours = [install_hint("apify"), "pip install -q .", f"pip install -e '.[tests]' {OTHER}-jobs"]

    assert [True, True, True] == [bool(OTHER_HINTS.search(line)) for line in theirs]
    assert [False, False, False] == [bool(OTHER_HINTS.search(line)) for line in ours]


def test_the_name_and_the_version_have_one_source() -> None:
    """pyproject.toml takes the version from the module that holds the name and the version
    (one place to bump), and names the distribution as that module does."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    project = pyproject["project"]
    source = ROOT / pyproject["tool"]["hatch"]["version"]["path"]
    extras = [
        requirement
        for requirements in project["optional-dependencies"].values()
        for requirement in requirements
        if requirement.startswith(f"{OTHER}")
    ]

    assert DISTRIBUTION == project["name"]
    assert ["version"] == project["dynamic"]
    assert f'__version__ = "{resumable.__version__}"' in source.read_text()
    assert 3 == len(extras)
    assert [] == [r for r in extras if not r.startswith(f"{DISTRIBUTION}[")]
    assert {"resumable"} == set(project["scripts"]) == set(project["entry-points"]["pytest11"])


def decoy_wheel(directory: Path, version: str) -> Path:
    """Write a wheel of ``resumable-jobs`` *version* that holds nothing: an index's newer one."""
    name = DISTRIBUTION.replace("-", "_")
    path = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: {version}\n"
        "Provides-Extra: apify\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    rows = []
    for file, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        rows.append(f"{file},sha256={digest.decode()},{len(text)}")
    rows.append(f"{info}/RECORD,,")
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as wheel:
        for file, text in files.items():
            wheel.writestr(file, text)
        wheel.writestr(f"{info}/RECORD", "\n".join(rows) + "\n")
    return path


def image_install(actor: str) -> str:
    """The shell command of the ``RUN`` in the Actor's Dockerfile that runs ``pip install``."""
    dockerfile = (ROOT / "examples" / actor / ".actor" / "Dockerfile").read_text()
    instructions = re.split(r"\n(?=[A-Z]+ )", dockerfile.replace("\\\n", " "))
    (command,) = [i[4:] for i in instructions if i.startswith("RUN ") and "pip install" in i]
    return command


def without_pip_configuration() -> dict[str, str]:
    """This process's environment without any pip configuration (files, variables)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return clean | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def as_in_the_image(actor: str, context: Path) -> None:
    """Copy what the Dockerfile copies before its install into *context*, the image's WORKDIR."""
    shutil.copy(ROOT / "examples" / actor / "requirements.txt", context)
    (context / "wheels").mkdir()


@pytest.mark.slow
@pytest.mark.parametrize("actor", ACTORS)
def test_the_actor_image_installs_the_wheel_built_here_whatever_the_index_holds(
    actor: str, tmp_path: Path
) -> None:
    """The wheel that the Actor's README builds, and the image's own install command, resolved
    with a newer resumable-jobs on offer: pip takes the wheel from wheels/, with the extra."""
    readme = (ROOT / "examples" / actor / "README.md").read_text()
    build = next(line for line in readme.splitlines() if "pip wheel " in line)
    build = build[build.index("pip wheel ") :]
    context = tmp_path / "image"
    context.mkdir()
    as_in_the_image(actor, context)
    wheels = context / "wheels"
    subprocess.run(
        [sys.executable, "-m", *build.replace(f"examples/{actor}/wheels", str(wheels)).split()],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("*.whl")
    index = tmp_path / "index"
    decoy_wheel(index, "99.0")
    report = tmp_path / "report.json"
    # The index as the image sees it, with a newer resumable-jobs offered beside it; the
    # other requirements need only be found there (--no-deps).
    dry_run = (
        f"{sys.executable} -m pip install --dry-run --report {report} --ignore-installed "
        f"--no-deps --find-links {index}"
    )
    install = image_install(actor)

    resolved = subprocess.run(
        ["/bin/sh", "-c", install.replace("pip install", dry_run, 1)],
        cwd=context,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert 1 == install.count("pip install")
    assert 0 == resolved.returncode, resolved.stderr
    (chosen,) = [
        item
        for item in json.loads(report.read_text())["install"]
        if item["metadata"]["name"] == DISTRIBUTION
    ]
    assert DISTRIBUTION == chosen["metadata"]["name"]
    assert resumable.__version__ == chosen["metadata"]["version"]
    assert wheel.as_uri() == chosen["download_info"]["url"]
    assert ["apify"] == chosen["requested_extras"]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("wheels", [0, 2])
def test_the_actor_image_stops_without_exactly_one_wheel(
    actor: str, wheels: int, tmp_path: Path
) -> None:
    """With no wheel in wheels/, or a stale one beside the new, the image's build stops and
    says which command builds the wheel."""
    as_in_the_image(actor, tmp_path)
    for version in ["0.0.1", "0.0.2"][:wheels]:
        decoy_wheel(tmp_path / "wheels", version)

    done = subprocess.run(
        ["/bin/sh", "-c", image_install(actor)],
        cwd=tmp_path,
        env=without_pip_configuration(),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert 1 == done.returncode
    assert "wheels/ must hold exactly one resumable-jobs wheel" in done.stderr
    assert f"pip wheel --no-deps --wheel-dir examples/{actor}/wheels ." in done.stderr
