"""The command line, run through its real entry points on state files written by real jobs."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from helpers import SCRIPT, cli, one_line_error

pytestmark = pytest.mark.slow


JOB = textwrap.dedent(
    """
    import asyncio, sys
    from resumable import FileStore, resumable

    store, key, stop, fail_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    @resumable(key=key, store=FileStore(store), interval=None)
    async def count(*, cursor: int = 0):
        for i in range(cursor, stop):
            if i == fail_at:
                raise RuntimeError("boom")
            yield i + 1

    async def main() -> None:
        try:
            outcome = await count()
        except RuntimeError:
            print("failed")
        else:
            print(outcome.resumed_from, outcome.cursor)

    asyncio.run(main())
    """
)

# A job whose cursor type no longer fits an int record: quarantine moves that record aside.
RETYPED_JOB = textwrap.dedent(
    """
    import asyncio, sys
    from resumable import FileStore, resumable

    @resumable(key=sys.argv[2], store=FileStore(sys.argv[1]), on_corrupt="quarantine")
    async def count(*, cursor: tuple[int, str] = (0, "")):
        yield (cursor[0] + 1, "b")

    async def main() -> None:
        await count()

    asyncio.run(main())
    """
)


def run_job(store: Path, key: str, stop: int, *, fail_at: int = -1) -> str:
    """Run the counting job in a child process; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", JOB, str(store), key, str(stop), str(fail_at)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A FileStore directory with a completed job ("done") and a failed one ("broken")."""
    store = tmp_path / "state"
    run_job(store, "done", 5)
    assert "failed" == run_job(store, "broken", 10, fail_at=3)
    return store


def test_list_shows_every_key_with_status_seq_version_and_age(state: Path) -> None:
    """`list` prints a table with one row per key: status, seq, version, age and cursor."""
    result = cli("--store", str(state), "list")

    assert 0 == result.returncode
    rows = [line.split() for line in result.stdout.decode().splitlines()]
    assert ["KEY", "STATUS", "SEQ", "VERSION", "AGE", "CURSOR", "NOTE"] == rows[0]
    assert [
        ["broken", "failed", "2", "1", "s", "3"],
        ["done", "completed", "2", "1", "s", "5"],
    ] == [
        rows[1][:4] + rows[1][5:],
        rows[2][:4] + rows[2][5:],
    ]
    assert rows[1][4].isdigit()  # the age in seconds: the records are fresh


def test_list_of_an_empty_store_says_so(tmp_path: Path) -> None:
    """An empty store directory is not an error: `list` says there is nothing in it."""
    (tmp_path / "empty").mkdir()

    result = cli("--store", str(tmp_path / "empty"), "list")

    assert (0, f"No records in {tmp_path / 'empty'}.\n") == (
        result.returncode,
        result.stdout.decode(),
    )


@pytest.mark.parametrize("command", [["list"], ["show", "done"], ["reset", "done", "--yes"]])
def test_a_missing_store_fails_with_one_line(tmp_path: Path, command: list[str]) -> None:
    """A store directory that does not exist fails every command, and creates nothing."""
    missing = tmp_path / "nowhere"

    line = one_line_error(cli("--store", str(missing), *command))

    assert f"no store at {missing}" in line
    assert not missing.exists()


def test_default_store_is_dot_resumable_in_the_working_directory(tmp_path: Path) -> None:
    """Without --store the CLI reads ``.resumable``, where jobs write by default."""
    run_job(tmp_path / ".resumable", "here", 2)

    result = subprocess.run(
        [sys.executable, "-m", "resumable", "show", "here", "--json"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=60,
    )

    assert 2 == json.loads(result.stdout)["cursor"]


def test_show_prints_a_readable_table(state: Path) -> None:
    """`show KEY` prints the cursor, status, seq, owner, version, updated_at and age."""
    record = json.loads((state / "broken.json").read_bytes())

    result = cli("--store", str(state), "show", "broken")

    assert 0 == result.returncode
    table = dict(line.split(None, 1) for line in result.stdout.decode().splitlines())
    assert {
        "key": "broken",
        "cursor": "3",
        "status": "failed",
        "seq": "2",
        "owner": record["owner"],
        "version": "1",
        "updated_at": datetime.fromisoformat(record["updated_at"]).isoformat(timespec="seconds"),
        "store": str(state),
    } == {name: value for name, value in table.items() if name != "age"}
    assert re.fullmatch(r"\d+ s ago", table["age"])


def test_show_json_matches_the_record_on_disk(state: Path) -> None:
    """`show --json` prints one JSON object with the record's fields, for scripts."""
    record = json.loads((state / "done.json").read_bytes())

    result = cli("--store", str(state), "show", "done", "--json")

    shown = json.loads(result.stdout)
    fields = ("key", "cursor", "status", "seq", "owner", "updated_at", "version")
    assert {name: record[name] for name in fields} == {name: shown[name] for name in fields}
    assert shown["age_seconds"] >= 0


def test_the_console_script_is_the_same_command(state: Path) -> None:
    """The installed ``resumable`` script runs the same command line as ``python -m``."""
    assert SCRIPT is not None, "the resumable console script is not installed"

    result = cli("--store", str(state), "show", "done", "--json", script=True)

    assert 5 == json.loads(result.stdout)["cursor"]


def test_show_of_an_unknown_key_names_the_keys_there(state: Path) -> None:
    """An unknown key fails with one line that lists the keys the store has."""
    line = one_line_error(cli("--store", str(state), "show", "nope"))

    assert f"resumable: no record for key 'nope' in {state} (keys there: broken, done)" == line


def test_show_json_of_an_unknown_key_prints_json_and_fails(state: Path) -> None:
    """`show --json` keeps stdout JSON for scripts when there is no record: `null`, exit 1,
    and the reason on stderr."""
    result = cli("--store", str(state), "show", "nope", "--json")

    assert 1 == result.returncode
    assert None is json.loads(result.stdout)
    assert result.stderr.decode().startswith("resumable: no record for key 'nope'")


def test_show_of_a_corrupted_record_says_where_it_is_and_leaves_it(state: Path) -> None:
    """A damaged record fails `show` with one line naming its file, and is left as it was."""
    path = state / "done.json"
    path.write_bytes(b'{"resumable": 1, "key": "done"')

    line = one_line_error(cli("--store", str(state), "show", "done"))

    assert "not valid JSON" in line
    assert f"(file: {path.resolve()})" in line
    assert f"--store {state} reset done" in line
    assert b'{"resumable": 1, "key": "done"' == path.read_bytes()


def test_list_marks_a_corrupted_record_instead_of_failing(state: Path) -> None:
    """`list` still lists the other keys when one record is damaged, and marks that one."""
    (state / "done.json").write_bytes(b"garbage")

    result = cli("--store", str(state), "list")

    assert 0 == result.returncode
    rows = [line.split() for line in result.stdout.decode().splitlines()[1:]]
    assert ["broken", "failed"] == rows[0][:2]
    assert ["done", "unreadable", "damaged:"] == rows[1][:3]


def test_reset_with_yes_makes_the_next_run_start_fresh(state: Path) -> None:
    """`reset KEY --yes` deletes the record; the job's next run has nothing to resume from."""
    result = cli("--store", str(state), "reset", "broken", "--yes")

    assert 0 == result.returncode
    assert not (state / "broken.json").exists()
    assert "None 10" == run_job(state, "broken", 10)


def test_reset_without_yes_refuses_when_nobody_can_answer(state: Path) -> None:
    """Without --yes and with stdin not a terminal, `reset` refuses and changes nothing."""
    before = (state / "done.json").read_bytes()

    line = one_line_error(cli("--store", str(state), "reset", "done"))

    assert "pass --yes" in line
    assert before == (state / "done.json").read_bytes()


@pytest.mark.parametrize(("answer", "deleted"), [(b"y\n", True), (b"\n", False)])
def test_reset_asks_on_a_terminal(state: Path, answer: bytes, deleted: bool) -> None:
    """On a terminal `reset` asks first and deletes only after a yes."""
    controller, terminal = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "resumable", "--store", str(state), "reset", "done"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,  # input() writes its prompt to stderr on a terminal
        )
        os.close(terminal)
        terminal = -1
        prompt = b""
        while b"[y/N]" not in prompt:
            chunk = os.read(controller, 1024)  # pytest-timeout bounds this read
            assert chunk, prompt
            prompt += chunk
        os.write(controller, answer)
        child.wait(timeout=60)
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)

    assert b"Forget the state of 'done' (cursor 5)" in prompt
    assert (deleted, 0 if deleted else 1) == (
        not (state / "done.json").exists(),
        child.returncode,
    )


def test_reset_works_on_a_corrupted_record(state: Path) -> None:
    """`reset` is the way out error messages point to: it must work on an unreadable record."""
    (state / "done.json").write_bytes(b"garbage")

    result = cli("--store", str(state), "reset", "done", "--yes")

    assert 0 == result.returncode
    assert not (state / "done.json").exists()


def test_export_then_import_brings_a_record_back(state: Path, tmp_path: Path) -> None:
    """`export` writes the record's bytes; `import` of them restores the resume point."""
    original = (state / "broken.json").read_bytes()
    exported = tmp_path / "broken.record"

    assert 0 == cli("--store", str(state), "export", "broken", str(exported)).returncode
    assert 0 == cli("--store", str(state), "reset", "broken", "--yes").returncode
    assert 0 == cli("--store", str(state), "import", "broken", str(exported)).returncode

    assert original == exported.read_bytes()
    assert original == (state / "broken.json").read_bytes()
    assert "3 10" == run_job(state, "broken", 10)


def test_export_and_import_use_stdout_and_stdin(state: Path, tmp_path: Path) -> None:
    """Without FILE, `export` writes to stdout and `import` reads stdin: a pipe between stores."""
    other = tmp_path / "other"
    other.mkdir()

    exported = cli("--store", str(state), "export", "done")
    imported = cli("--store", str(other), "import", "done", stdin=exported.stdout)

    assert 0 == imported.returncode
    assert (state / "done.json").read_bytes() == exported.stdout
    assert exported.stdout == (other / "done.json").read_bytes()


def test_import_refuses_what_is_not_a_record(state: Path, tmp_path: Path) -> None:
    """`import` validates the bytes first: a file that is not a record writes nothing."""
    junk = tmp_path / "junk.json"
    junk.write_text('{"cursor": 3}')

    line = one_line_error(cli("--store", str(state), "import", "fresh", str(junk)))

    assert f"{junk} does not hold a resumable record" in line
    assert not (state / "fresh.json").exists()


@pytest.mark.parametrize(
    ("cursor", "said"),
    [
        ("NaN", "NaN is not a JSON value"),
        ("Infinity", "Infinity is not a JSON value"),
        ("[1, -Infinity]", "-Infinity is not a JSON value"),
        ('"\\ud800"', "cannot be written as UTF-8"),
    ],
)
def test_import_refuses_a_record_no_run_could_load_back(
    state: Path, tmp_path: Path, cursor: str, said: str
) -> None:
    """A cursor that is not strict JSON (NaN, Infinity) or a string no run could write back
    (a lone surrogate) is refused in one line, nothing written, so that `show --json` always
    prints valid JSON and the next run does not fail on it."""
    record = tmp_path / "record.json"
    record.write_text(
        '{"resumable": 1, "key": "k", "version": 1, "status": "running", "seq": 2, '
        '"generation": 1, "owner": "x", "updated_at": "2026-01-01T00:00:00+00:00", '
        f'"cursor": {cursor}}}'
    )

    line = one_line_error(cli("--store", str(state), "import", "fresh", str(record), "--yes"))

    assert said in line
    assert "nothing was written" in line
    assert not (state / "fresh.json").exists()


def test_import_over_a_record_needs_confirmation(state: Path) -> None:
    """Replacing an existing record is as destructive as a reset: it needs --yes off a terminal."""
    record = (state / "broken.json").read_bytes()

    refused = cli("--store", str(state), "import", "done", stdin=record)
    accepted = cli("--store", str(state), "import", "done", "--yes", stdin=record)

    assert "pass --yes" in one_line_error(refused)
    assert 0 == accepted.returncode
    assert record == (state / "done.json").read_bytes()


def test_restore_moves_a_quarantined_record_back(state: Path) -> None:
    """A record the job quarantined is listed as such, and `restore` moves it back to its key."""
    record = (state / "done.json").read_bytes()
    subprocess.run(
        [sys.executable, "-c", RETYPED_JOB, str(state), "done"],
        check=True,
        timeout=60,
        capture_output=True,
    )
    (aside,) = [p.stem for p in state.glob("done.corrupt-*.json")]

    listed = cli("--store", str(state), "list").stdout.decode()
    restored = cli("--store", str(state), "restore", aside, "--yes")

    assert "quarantined" in next(line for line in listed.splitlines() if line.startswith(aside))
    assert 0 == restored.returncode
    assert record == (state / "done.json").read_bytes()
    assert [] == list(state.glob("done.corrupt-*.json"))


def test_restore_refuses_a_key_that_is_not_quarantined(state: Path) -> None:
    """`restore` only takes keys the engine quarantined (KEY.corrupt-TIMESTAMP)."""
    line = one_line_error(cli("--store", str(state), "restore", "done"))

    assert "'done' is not a quarantined key" in line


ACTOR_JOB = textwrap.dedent(
    """
    import asyncio
    from apify import Actor
    from resumable import resumable

    @resumable(key="actor-job")
    async def count(*, cursor: int = 0):
        for i in range(cursor, 7):
            yield i + 1

    async def main() -> None:
        async with Actor:
            await count()

    asyncio.run(main())
    """
)


def test_apify_location_reads_an_actors_local_storage(tmp_path: Path) -> None:
    """``--store apify:DIR`` reads what a real Actor run locally left in its default store."""
    storage = tmp_path / "storage"
    env = os.environ | {"CRAWLEE_STORAGE_DIR": str(storage), "CRAWLEE_PURGE_ON_START": "false"}
    subprocess.run(
        [sys.executable, "-c", ACTOR_JOB], env=env, check=True, timeout=120, capture_output=True
    )

    listed = cli("--store", f"apify:{storage}", "list")
    shown = cli("--store", f"apify:{storage}", "show", "actor-job", "--json")
    reset = cli("--store", f"apify:{storage}", "reset", "actor-job", "--yes")
    after = cli("--store", f"apify:{storage}", "show", "actor-job")

    assert 0 == listed.returncode, listed.stderr
    assert ["actor-job", "completed"] == listed.stdout.decode().splitlines()[1].split()[:2]
    assert ("actor-job", 7, "completed") == tuple(
        json.loads(shown.stdout)[name] for name in ("key", "cursor", "status")
    )
    assert 0 == reset.returncode
    assert "no record for key 'actor-job'" in one_line_error(after)


def test_apify_location_without_storage_fails_with_one_line(tmp_path: Path) -> None:
    """``apify:DIR`` where DIR holds no local storage fails and creates nothing."""
    line = one_line_error(cli("--store", f"apify:{tmp_path / 'storage'}", "list"))

    assert "no Apify/Crawlee local storage" in line
    assert not (tmp_path / "storage").exists()


NAIVE_RECORD = (
    b'{"resumable":1,"key":"k","version":1,"status":"running","seq":3,"owner":"me",'
    b'"updated_at":"2024-05-01T12:00:00","cursor":5}'
)


def test_import_refuses_an_updated_at_without_a_timezone(tmp_path: Path) -> None:
    """`import` of a record whose updated_at has no timezone fails with one line, writes nothing."""
    (tmp_path / "state").mkdir()
    record = tmp_path / "rec.json"
    record.write_bytes(NAIVE_RECORD)

    line = one_line_error(cli("--store", str(tmp_path / "state"), "import", "k", str(record)))

    assert "'2024-05-01T12:00:00' without a timezone" in line
    assert [] == list((tmp_path / "state").iterdir())


def test_a_stored_naive_updated_at_reads_as_utc(tmp_path: Path) -> None:
    """A hand-edited record without a timezone is listed and shown, its time read as UTC."""
    (tmp_path / "k.json").write_bytes(NAIVE_RECORD)

    listed = cli("--store", str(tmp_path), "list")
    shown = cli("--store", str(tmp_path), "show", "k")
    as_json = cli("--store", str(tmp_path), "show", "k", "--json")

    assert (0, 0, 0) == (listed.returncode, shown.returncode, as_json.returncode)
    assert ["k", "running", "3"] == listed.stdout.decode().splitlines()[1].split()[:3]
    assert "updated_at  2024-05-01T12:00:00+00:00" in shown.stdout.decode()
    assert "2024-05-01T12:00:00+00:00" == json.loads(as_json.stdout)["updated_at"]


async def test_state_of_a_naive_updated_at_is_timezone_aware(tmp_path: Path) -> None:
    """`fn.state()` of a hand-edited record without a timezone returns a UTC `updated_at`."""
    from datetime import UTC

    from resumable import FileStore, resumable

    @resumable(key="k", store=FileStore(tmp_path))
    async def count(*, cursor: int = 0) -> AsyncIterator[int]:
        yield cursor + 1

    (tmp_path / "k.json").write_bytes(NAIVE_RECORD)

    record = await count.state()

    assert record is not None
    assert datetime(2024, 5, 1, 12, tzinfo=UTC) == record.updated_at
    assert UTC == record.updated_at.tzinfo


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("my notes.json", "its name is not a key"),
        ("backup.json/", "it is a directory"),
        ("notes.json", "it is JSON but not a resumable record"),
    ],
)
def test_list_skips_foreign_entries_and_says_why(state: Path, entry: str, reason: str) -> None:
    """A foreign file or directory in the store does not hide the records: it is named on stderr."""
    if entry.endswith("/"):
        (state / entry).mkdir()
    else:
        (state / entry).write_text('{"a": 1}')

    result = cli("--store", str(state), "list")

    assert 0 == result.returncode
    keys = [line.split()[0] for line in result.stdout.decode().splitlines()[1:]]
    assert ["broken", "done"] == keys
    assert [f"resumable: skipped {entry.rstrip('/')!r} in {state}: {reason}"] == [
        line.split(" (", 1)[0] for line in result.stderr.decode().splitlines()
    ]


def test_a_crawlee_storage_directory_is_pointed_to_apify(tmp_path: Path) -> None:
    """`--store ./storage` on Apify/Crawlee local storage fails and suggests `apify:./storage`."""
    storage = tmp_path / "storage"
    (storage / "key_value_stores" / "default").mkdir(parents=True)
    (storage / "datasets" / "default").mkdir(parents=True)

    line = one_line_error(cli("--store", str(storage), "list"))

    assert "looks like Apify/Crawlee local storage" in line
    assert line.endswith(f"pass --store apify:{storage}")


def test_reset_says_that_outputs_stay(state: Path) -> None:
    """`reset` says the next run starts from scratch and that outputs already written stay."""
    result = cli("--store", str(state), "reset", "done", "--yes")

    assert 0 == result.returncode
    said = result.stderr.decode()
    assert "its next run starts from scratch" in said
    assert "Outputs it already wrote (files, dataset items) stay where they are" in said


BAD_INVOCATIONS = {
    "unknown key": ["show", "nope"],
    "invalid key": ["show", "my notes"],
    "missing store directory": ["--store", "{tmp}/nowhere", "list"],
    "store that is a file": ["--store", "{tmp}/file.txt", "list"],
    "crawlee storage as a directory": ["--store", "{tmp}/storage", "list"],
    "apify without storage": ["--store", "apify:{tmp}/nowhere", "list"],
    "unknown scheme": ["--store", "ftp://127.0.0.1/x", "list"],
    "missing SQLite database": ["--store", "sqlite+aiosqlite:///{tmp}/nowhere.db", "list"],
    "corrupted record": ["show", "garbage"],
    "corrupted record as JSON": ["show", "garbage", "--json"],
    "record that is a directory": ["show", "backup"],
    "bad JSON on import": ["import", "new", "{tmp}/bad.json"],
    "not a record on import": ["import", "new", "{tmp}/file.txt"],
    "naive timestamp on import": ["import", "new", "{tmp}/naive.json"],
    "missing file on import": ["import", "new", "{tmp}/missing.json"],
    "directory as the file to import": ["import", "new", "{tmp}"],
    "export to a missing directory": ["export", "done", "{tmp}/nowhere/out.json"],
    "reset without a terminal": ["reset", "done"],
    "import over a record without a terminal": ["import", "done", "{tmp}/good.json"],
    "restore of a key that is not quarantined": ["restore", "done"],
    "restore of an unreadable quarantined record": ["restore", "x.corrupt-1"],
    "unknown command": ["frobnicate"],
    "missing argument": ["show"],
}


@pytest.mark.parametrize("argv", BAD_INVOCATIONS.values(), ids=BAD_INVOCATIONS.keys())
def test_every_bad_invocation_fails_with_one_line(
    state: Path, tmp_path: Path, argv: list[str]
) -> None:
    """Each bad input ends non-zero with one line on stderr, never with a traceback."""
    (tmp_path / "file.txt").write_text("hello")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "naive.json").write_bytes(NAIVE_RECORD)
    (tmp_path / "good.json").write_bytes((state / "done.json").read_bytes())
    (tmp_path / "storage" / "key_value_stores").mkdir(parents=True)
    (state / "garbage.json").write_bytes(b"\x00garbage")
    (state / "x.corrupt-1.json").write_bytes(b"garbage")
    (state / "backup.json").mkdir()
    args = [arg.format(tmp=tmp_path) for arg in argv]
    if "--store" not in args:
        args = ["--store", str(state), *args]

    result = cli(*args)

    lines = result.stderr.decode().splitlines()
    assert 0 != result.returncode
    assert 1 == len(lines), lines
    assert "Traceback" not in result.stderr.decode()
    assert lines[0].startswith("resumable")


# Runs the command line with some modules made unimportable, as when an extra is missing.
WITHOUT_MODULES = textwrap.dedent(
    """
    import sys
    for name in sys.argv[1].split(","):
        sys.modules[name] = None
    from resumable._cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize(
    ("url", "blocked", "extra"),
    [
        ("redis://:s3cret@127.0.0.1:1/0", "redis", "redis"),
        ("rediss://127.0.0.1:1/0", "redis", "redis"),
        ("unix:///tmp/redis.sock", "redis", "redis"),
        ("postgresql+asyncpg://me:s3cret@127.0.0.1:1/db", "sqlalchemy", "sql"),
        ("sqlite+aiosqlite:///{tmp}/state.db", "sqlalchemy", "sql"),
    ],
)
def test_a_shared_store_without_its_extra_names_the_extra(
    tmp_path: Path, url: str, blocked: str, extra: str
) -> None:
    """A redis:// or SQLAlchemy URL without the extra installed says which one to install."""
    location = url.format(tmp=tmp_path)
    (tmp_path / "state.db").write_bytes(b"")

    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MODULES, blocked, "--store", location, "list"],
        capture_output=True,
        timeout=60,
        check=False,
    )

    line = one_line_error(result)
    assert f'needs the {extra} extra: pip install "resumable-jobs[{extra}]"' in line
    assert "s3cret" not in line
    assert b"" == (tmp_path / "state.db").read_bytes()


# Stands in a FileStore for RedisStore, to see what the command line does with the store.
FAKE_REDIS = textwrap.dedent(
    """
    import sys, types
    from pathlib import Path
    from resumable import FileStore

    class RedisStore(FileStore):
        def __init__(self, url):
            super().__init__(Path(sys.argv[1]))
            (Path(sys.argv[1]) / "url.txt").write_text(url)

        async def aclose(self):
            (self.directory / "closed.txt").write_text("closed")

        async def open(self):
            url = (self.directory / "url.txt").read_text()
            if "refused" in url:
                raise ConnectionRefusedError(111, "Connection refused")
            if "nodriver" in url:
                raise ModuleNotFoundError("No module named 'driver'")

    module = types.ModuleType("resumable.redis")
    module.RedisStore = RedisStore
    sys.modules["resumable.redis"] = module
    from resumable._cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("command", [["list"], ["show", "done"], ["show", "nope"]])
def test_a_redis_url_opens_redis_store_and_closes_it(state: Path, command: list[str]) -> None:
    """`--store redis://...` hands the URL to RedisStore and closes the store after the command."""
    url = "redis://127.0.0.1:1/0"

    result = subprocess.run(
        [sys.executable, "-c", FAKE_REDIS, str(state), "--store", url, *command],
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert (0 if command[-1] != "nope" else 1) == result.returncode, result.stderr
    assert url == (state / "url.txt").read_text()
    assert "closed" == (state / "closed.txt").read_text()


@pytest.mark.parametrize(
    ("host", "said"),
    [
        (
            "refused",
            (
                "cannot reach the store at redis://refused:6379/0: the connection was refused, "
                "so nothing listens at the store's address (ConnectionRefusedError: [Errno 111] "
                "Connection refused); check the host and port in the store's URL, and that its "
                "server is running"
            ),
        ),
        (
            "nodriver",
            (
                "--store redis://nodriver:6379/0 needs the redis extra: "
                "pip install \"resumable-jobs[redis]\" (No module named 'driver')"
            ),
        ),
    ],
)
def test_a_store_that_cannot_connect_fails_with_one_line(state: Path, host: str, said: str) -> None:
    """A shared store whose server is down, or whose driver is missing, fails with one line
    after closing what it opened."""
    url = f"redis://{host}:6379/0"

    result = subprocess.run(
        [sys.executable, "-c", FAKE_REDIS, str(state), "--store", url, "list"],
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert f"resumable: {said}" == one_line_error(result)
    assert "closed" == (state / "closed.txt").read_text()


@pytest.mark.parametrize("server", ["redis", "sql-sqlite", "sql-postgres"])
def test_every_command_works_on_the_shared_stores(
    request: pytest.FixtureRequest, tmp_path: Path, server: str
) -> None:
    """list, show --json, export, import and reset on records a real job wrote to a real
    Redis, SQLite and PostgreSQL, reached with --store URL."""
    if server == "redis":
        url = request.getfixturevalue("redis_server").url
    elif server == "sql-postgres":
        url = request.getfixturevalue("postgres_server").url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    key = f"shared-{uuid.uuid4().hex[:8]}"
    job_script = (
        "import asyncio, sys\n"
        "from resumable import job\n"
        "from resumable.redis import RedisStore\n"
        "from resumable.sql import SQLStore\n"
        "async def main():\n"
        "    url, key = sys.argv[1], sys.argv[2]\n"
        "    store = RedisStore(url) if url.startswith('redis') else SQLStore(url)\n"
        "    async with store:\n"
        "        async with job(key, 0, store=store, triggers=[]) as j:\n"
        "            j.advance(7)\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", job_script, url, key], check=True, timeout=60)

    listed = cli("--store", url, "list")
    shown = cli("--store", url, "show", key, "--json")
    exported = cli("--store", url, "export", key)
    reset = cli("--store", url, "reset", key, "--yes")
    after_reset = cli("--store", url, "show", key)
    imported = cli("--store", url, "import", key, stdin=exported.stdout)
    back = json.loads(cli("--store", url, "show", key, "--json").stdout)

    assert 0 == listed.returncode, listed.stderr
    assert key in listed.stdout.decode()
    assert (7, "completed") == (
        json.loads(shown.stdout)["cursor"],
        json.loads(shown.stdout)["status"],
    )
    assert 0 == reset.returncode, reset.stderr
    assert 0 != after_reset.returncode
    assert 0 == imported.returncode, imported.stderr
    assert (7, "completed") == (back["cursor"], back["status"])
