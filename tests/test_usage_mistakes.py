"""Mistakes a new user makes get a sentence that says what happened and what to do."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from helpers import cli, one_line_error

from resumable import JobDefinitionError, MemoryStore, Outbox, ResumableWarning, resumable


def test_a_positional_outbox_parameter_is_refused_at_decoration() -> None:
    """An `out: Outbox[...]` before `*` would only fail at the call, with a bare "missing 1
    required positional argument": the decorator says to make it keyword-only."""
    with pytest.raises(JobDefinitionError, match=r"make it keyword-only, after `\*`"):

        @resumable(key="export", store=MemoryStore())
        async def export(out: Outbox[dict[str, int]], *, cursor: int = 0) -> AsyncIterator[int]:
            yield 1


def test_an_argument_of_its_own_named_out_stays_the_jobs() -> None:
    """A positional `out` that is not an outbox is the job's own argument."""

    @resumable(key="copy", store=MemoryStore(), triggers=[])
    def copy(out: list[int], *, cursor: int = 0) -> Iterator[int]:
        out.append(cursor)
        yield cursor + 1

    mine: list[int] = []
    outcome = copy(mine)

    assert [0] == mine
    assert "completed" == outcome.status


def test_an_async_def_that_never_yields_is_told_to_yield() -> None:
    """A coroutine function is not a job: the error says a job yields its cursors."""
    with pytest.raises(JobDefinitionError, match="an `async def` that never yields"):

        @resumable(key="once", store=MemoryStore())
        async def once(*, cursor: int = 0) -> None:
            pass


def test_a_run_never_awaited_says_so_where_it_is_seen() -> None:
    """A run called and dropped without `await` warns with a `ResumableWarning` (shown by
    default, unlike a `ResourceWarning`), saying how to run it."""

    @resumable(key="never", store=MemoryStore(), triggers=[])
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        yield 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        numbers()
        gc.collect()
    said = [str(w.message) for w in caught if issubclass(w.category, ResumableWarning)]

    assert 1 == len(said)
    assert "never awaited nor iterated" in said[0]
    assert "`await " in said[0]


async def test_a_plain_job_called_inside_a_running_loop_warns_that_it_blocks_it() -> None:
    """A plain generator's job called from async code runs (to its end) but says that it
    blocks the event loop meanwhile, and how not to."""

    @resumable(key="plain", store=MemoryStore(), triggers=[])
    def plain(*, cursor: int = 0) -> Iterator[int]:
        yield cursor + 1

    with pytest.warns(ResumableWarning, match=r"blocks the loop.*asyncio\.to_thread") as said:
        outcome = plain()

    assert "completed" == outcome.status
    assert __file__ == said[0].filename  # it points at the call, not into resumable


def test_apify_store_outside_an_actor_says_every_run_starts_fresh(tmp_path: Path) -> None:
    """`ApifyStore()` outside `async with Actor:` keeps state in Crawlee's local storage,
    which Crawlee purges at each start: a warning says so, and what to use instead."""
    script = tmp_path / "outside.py"
    script.write_text(
        "import asyncio\n"
        "from resumable import job\n"
        "from resumable.apify import ApifyStore\n"
        "async def main():\n"
        "    async with job('k', 0, store=ApifyStore(), triggers=[], interval=None) as j:\n"
        "        print('RESUMED', j.resumed, flush=True)\n"
        "        j.advance(1)\n"
        "asyncio.run(main())\n"
    )
    env = {"CRAWLEE_STORAGE_DIR": str(tmp_path / "storage")}
    runs = [
        subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
            env={**os.environ, **env},
        )
        for _ in range(2)
    ]

    assert [0, 0] == [run.returncode for run in runs], runs[-1].stderr
    assert ["RESUMED False", "RESUMED False"] == [run.stdout.strip() for run in runs]
    assert "ApifyStore() is used outside `async with Actor:`" in runs[1].stderr
    assert "every run starts fresh" in runs[1].stderr
    assert f"{script}:5: ResumableWarning" in runs[1].stderr


def test_the_store_option_works_after_the_command_too(tmp_path: Path) -> None:
    """`resumable list --store DIR` is what people type: it works as `--store DIR list`."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "k.json").write_text(
        '{"resumable": 1, "key": "k", "version": 1, "status": "running", "seq": 2, '
        '"owner": "x", "updated_at": "2026-01-01T00:00:00+00:00", "cursor": 7}'
    )

    after = cli("list", "--store", str(tmp_path / "state"))
    before = cli("--store", str(tmp_path / "state"), "list")

    assert 0 == after.returncode, after.stderr
    assert before.stdout == after.stdout
    assert b"k " in after.stdout


@pytest.mark.parametrize(
    ("location", "meant"),
    [
        ("redis:/localhost:6379/0", "redis://localhost:6379/0"),
        ("redis:localhost", "redis://localhost"),
        ("postgresql+asyncpg:/db.example/jobs", "postgresql+asyncpg://db.example/jobs"),
        ("sqlite+aiosqlite:state.db", "sqlite+aiosqlite:///state.db"),
    ],
)
def test_a_url_with_its_slashes_missing_is_not_taken_for_a_directory(
    location: str, meant: str
) -> None:
    """`redis:/host` is a URL gone wrong, not a FileStore directory that does not exist: the
    command line says which URL was meant."""
    said = one_line_error(cli("--store", location, "list"))

    assert f"did you mean {meant}?" in said
