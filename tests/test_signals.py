"""SIGTERM and SIGINT: persist, close the generator, end `aborted`, put the handlers back."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import wait_until

from resumable import MemoryStore, Signals, job, resumable

CHILD = Path(__file__).with_name("child_job.py")


def python(*args: str) -> subprocess.Popen[str]:
    """Run a Python script in a child process, its output piped."""
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def start_child(tmp_path: Path, n: int = 100_000) -> subprocess.Popen[str]:
    return python(str(CHILD), str(tmp_path / "state"), str(tmp_path / "log"), str(n))


def start_script(path: Path, source: str) -> subprocess.Popen[str]:
    """Write *source* to *path* and run it in a child process."""
    path.write_text(source)
    return python(str(path))


def read_until(child: subprocess.Popen[str], marker: str) -> list[str]:
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.startswith(marker):
            return lines
    raise AssertionError(f"child ended before {marker}: {lines}, stderr: {child.stderr.read()}")  # type: ignore[union-attr]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_persists_closes_the_generator_and_ends_aborted(tmp_path: Path, signum: int):
    """The real process saves its cursor, runs the generator's finally, and exits cleanly."""
    child = start_child(tmp_path)
    read_until(child, "READY")
    child.send_signal(signum)
    out, err = child.communicate(timeout=20)
    outcome = json.loads(out.split("OUTCOME", 1)[1])
    record = json.loads((tmp_path / "state" / "child.json").read_text())
    processed = (tmp_path / "log").read_text().split()

    assert 0 == child.returncode, err
    assert "FINALLY" in out
    assert "aborted" == outcome["status"]
    assert (outcome["cursor"], "aborted") == (record["cursor"], record["status"])
    # Everything before the saved cursor was processed; at most the item in flight after it.
    assert record["cursor"] <= len(processed) <= record["cursor"] + 1


def test_a_second_sigint_interrupts_a_stuck_shutdown(tmp_path: Path):
    """Once the abort has saved and cut the work, the next SIGINT goes to Python's handler."""
    child = start_script(
        tmp_path / "stuck.py",
        "import asyncio\n"
        "from resumable import MemoryStore, resumable\n"
        "@resumable(key='stuck', store=MemoryStore(), grace=0.1)\n"
        "async def stuck(*, cursor: int = 0):\n"
        "    yield 1\n"
        "    try:\n"
        "        print('READY', flush=True)\n"
        "        await asyncio.Event().wait()\n"
        "    finally:\n"
        "        print('STUCK', flush=True)\n"
        "        await asyncio.Event().wait()\n"
        "asyncio.run(stuck())\n",
    )
    read_until(child, "READY")
    child.send_signal(signal.SIGINT)
    read_until(child, "STUCK")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=20)

    assert 0 != child.returncode
    assert "KeyboardInterrupt" in err


async def test_handlers_are_restored_after_the_run():
    """A job's signal handlers are gone when it ends, even when jobs overlap."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    store = MemoryStore()
    async with job("outer", cursor=0, store=store, triggers=[Signals()]) as outer:
        during = signal.getsignal(signal.SIGTERM)
        async with job("inner", cursor=0, store=store, triggers=[Signals()]):
            pass
        still_during = signal.getsignal(signal.SIGTERM)
        outer.advance(1)
    after = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    assert before == after
    assert during is still_during
    assert during != before[signal.SIGTERM]


async def test_a_handler_installed_during_a_run_is_reported_and_takes_over_after_it():
    """While a job listens for SIGTERM, `signal.getsignal` reports the handler installed for
    it meanwhile, but the signal still stops the job and not that handler; once the job has
    ended, that handler is the process's, and the signal module's functions are their own."""
    functions = (signal.signal, signal.getsignal)
    before = signal.getsignal(signal.SIGTERM)
    got: list[int] = []

    def mine(signum: int, frame: object) -> None:
        got.append(signum)

    try:
        async with job("k", cursor=0, store=MemoryStore(), triggers=[Signals()]) as j:
            jobs = signal.signal(signal.SIGTERM, mine)
            during = signal.getsignal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            await wait_until(lambda: j.stopping)
            j.advance(1)
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)

    assert [] == got
    assert "aborted" == j.outcome.status
    assert mine is during
    assert mine is after
    assert jobs is not before
    assert functions == (signal.signal, signal.getsignal)


async def test_a_loop_callback_added_and_removed_during_a_run_leaves_no_trace():
    """A callback added to the job's loop for SIGINT and removed again (what each
    crawler.run does) changes nothing: after the run, SIGINT's handler is the one from
    before, not asyncio's default that its removal would have left."""
    loop = asyncio.get_running_loop()
    before = signal.getsignal(signal.SIGINT)
    async with job("k", cursor=0, store=MemoryStore(), triggers=[Signals()]):
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        removed = loop.remove_signal_handler(signal.SIGINT)
    after = signal.getsignal(signal.SIGINT)

    assert removed
    assert before is after
    assert "add_signal_handler" not in vars(loop)


async def test_sigterm_in_process_reaches_every_running_job():
    """One SIGTERM aborts all jobs of the process, each saving its own cursor."""
    store = MemoryStore()
    progress: dict[str, int] = {}

    def make(key: str):
        @resumable(key=key, store=store, interval=None, triggers=[Signals()])
        async def forever(*, cursor: int = 0) -> AsyncIterator[int]:
            i = cursor
            while True:
                i += 1
                progress[key] = i
                await asyncio.sleep(0.001)
                yield i

        return forever

    tasks = [asyncio.ensure_future(make(k)()) for k in ("a", "b")]
    await wait_until(lambda: min(progress.get("a", 0), progress.get("b", 0)) > 2)
    signal.raise_signal(signal.SIGTERM)
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)

    assert ["aborted", "aborted"] == [o.status for o in outcomes]
    assert all(o.cursor > 0 for o in outcomes)


def test_two_sigterms_a_few_ms_apart_lose_nothing(tmp_path: Path):
    """A second SIGTERM right after the first (a process group plus a forwarded one) cuts the
    work at once but never ends the process before the run's last save lands."""
    child = start_child(tmp_path)
    read_until(child, "READY")
    child.send_signal(signal.SIGTERM)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=20)
    record = json.loads((tmp_path / "state" / "child.json").read_text())
    processed = (tmp_path / "log").read_text().split()

    assert "aborted" == record["status"]
    assert record["cursor"] <= len(processed) <= record["cursor"] + 1
    if child.returncode == -signal.SIGTERM:
        # The run ended and put the default handler back before the second signal was
        # delivered (a loaded machine): it may end the process, but only after the run.
        assert f"ended aborted; the record holds cursor {record['cursor']} (" in err
    else:
        outcome = json.loads(out.split("OUTCOME", 1)[1])
        assert 0 == child.returncode, err
        assert ("aborted", record["cursor"]) == (outcome["status"], outcome["cursor"])


def test_a_second_sigterm_while_the_generator_closes_cuts_its_finally_and_still_saves(
    tmp_path: Path,
):
    """A second SIGTERM that arrives once the work has stopped, while its `finally` hangs
    (a connection that does not close), cancels that `finally`, not the process: the run
    ends `aborted` with its last save made."""
    child = start_script(
        tmp_path / "closing.py",
        "import asyncio, json\n"
        "from resumable import FileStore, resumable\n"
        f"@resumable(key='closing', store=FileStore({str(tmp_path / 'state')!r}))\n"
        "async def work(*, cursor: int = 0):\n"
        "    try:\n"
        "        for i in range(cursor, 1_000_000):\n"
        "            if i == cursor + 3:\n"
        "                print('READY', flush=True)\n"
        "            await asyncio.sleep(0.001)\n"
        "            yield i + 1\n"
        "    finally:\n"
        "        print('CLOSING', flush=True)\n"
        "        try:\n"
        "            await asyncio.sleep(60)\n"
        "        except asyncio.CancelledError:\n"
        "            print('CUT', flush=True)\n"
        "            raise\n"
        "outcome = asyncio.run(work())\n"
        "print('OUTCOME', json.dumps([outcome.status, outcome.cursor]), flush=True)\n",
    )
    read_until(child, "READY")
    child.send_signal(signal.SIGTERM)
    read_until(child, "CLOSING")
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=20)
    record = json.loads((tmp_path / "state" / "closing.json").read_text())

    assert 0 == child.returncode, err
    assert "CUT" in out
    assert ["aborted", record["cursor"]] == json.loads(out.split("OUTCOME", 1)[1])
    assert "aborted" == record["status"]


def test_a_handler_installed_while_the_job_runs_is_kept(tmp_path: Path):
    """A SIGTERM handler the program installs during a run (a web server's) survives its end."""
    script = tmp_path / "kept.py"
    script.write_text(
        "import asyncio, os, signal\n"
        "from resumable import MemoryStore, job\n"
        "got = []\n"
        "async def main():\n"
        "    async with job('k', 0, store=MemoryStore(), interval=None) as j:\n"
        "        signal.signal(signal.SIGTERM, lambda s, f: got.append('mine'))\n"
        "        j.advance(1)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    for _ in range(1000):\n"
        "        if got:\n"
        "            break\n"
        "        await asyncio.sleep(0.005)\n"
        "    print('GOT', got, flush=True)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=False
    )

    assert 0 == result.returncode, result.stderr
    assert "GOT ['mine']" in result.stdout


def test_a_known_termination_grace_budgets_the_abort(monkeypatch: pytest.MonkeyPatch):
    """Signals(grace=N), or RESUMABLE_TERMINATION_GRACE, leaves the abort N less a second."""
    monkeypatch.delenv("RESUMABLE_TERMINATION_GRACE", raising=False)
    unknown = Signals().budget()
    monkeypatch.setenv("RESUMABLE_TERMINATION_GRACE", "30")
    from_env = Signals().budget()
    given = Signals(grace=10).budget()

    assert float("inf") == unknown
    assert 29.0 == from_env
    assert 9.0 == given


FOREIGN_HANDLER = """\
import asyncio, json, os, signal, sys
from resumable import FileStore, resumable

install, signum, when, state = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3], sys.argv[4]
got = []


def foreign(*_):
    got.append("foreign")


@resumable(key="k", store=FileStore(state), interval=None)
async def work(*, cursor: int = 0):
    loop = asyncio.get_running_loop()
    for i in range(cursor, 10_000):
        if i == 3:
            if install == "loop":
                loop.add_signal_handler(signum, foreign)
            else:
                previous = signal.signal(signum, foreign)
            if when == "removed":
                if install == "loop":
                    loop.remove_signal_handler(signum)
                else:
                    signal.signal(signum, previous)
            os.kill(os.getpid(), signum)
        await asyncio.sleep(0.001)
        yield i + 1


async def main():
    outcome = await work()
    during = list(got)
    if when == "installed":  # it takes the signal now that no job listens
        os.kill(os.getpid(), signum)
        for _ in range(2000):
            if got:
                break
            await asyncio.sleep(0.005)
    print("OUTCOME", json.dumps([outcome.status, outcome.cursor, during, got]), flush=True)


asyncio.run(main())
"""


@pytest.mark.parametrize("when", ["installed", "removed"])
@pytest.mark.parametrize("install", ["loop", "signal"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_job_whoever_installed_a_handler_for_it_meanwhile(
    tmp_path: Path, signum: signal.Signals, install: str, when: str
):
    """A handler that the job's code installs for the signal (with `loop.add_signal_handler`,
    as Crawlee's crawler.run does, or `signal.signal`) waits while the job listens: the
    signal stops the job at the cursor its work reached, whether that handler is still
    installed or was removed again (asyncio's removal resets the process's handler to the
    default), and once the job has ended the handler still installed takes the signal."""
    script = tmp_path / "foreign.py"
    script.write_text(FOREIGN_HANDLER)
    child = python(str(script), install, signum.name, when, str(tmp_path / "state"))
    out, err = child.communicate(timeout=30)
    status, cursor, during, after = json.loads(out.split("OUTCOME", 1)[1])
    record = json.loads((tmp_path / "state" / "k.json").read_text())

    assert 0 == child.returncode, err
    assert "aborted" == status
    assert 4 <= cursor < 10_000  # every cursor's work is done once it is yielded
    assert ("aborted", cursor) == (record["status"], record["cursor"])
    assert [] == during
    assert (["foreign"] if when == "installed" else []) == after
