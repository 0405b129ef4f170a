"""Time to safety on ``migrating``: from the platform's message to the cursor being durable.

Each subject is a real Actor (the Apify SDK, "at home", local storage) in a child process,
connected to its own `PlatformEvents` stand-in. The parent tells a child to start a job,
waits until it has been working for a while, notes the machine-wide monotonic clock and sends
``migrating``; the child notes, on the same clock:

- ``received``: the SDK's websocket reader has the message (``ApifyEventManager``);
- ``listener``: the save on migration starts (``Job.migrate`` for resumable; the SDK's
  ``persistState`` listener of ``use_state`` for the SDK);
- ``save_start`` / ``durable``: the store's save is entered / has returned. For resumable's
  `FileStore` and `ApifyStore` (direct path on local storage) that means written, fsynced and
  renamed into place, directory fsynced. For ``use_state`` it means Crawlee's file-system
  client has written the record: it never fsyncs, so its figure flatters it.

It also logs when every item starts and what every yield carried, which gives the work
thrown away: items started after the message was received (and after the job's listener
ran), and how many cursors the latest yielded one was ahead of the saved one at ``durable``.
After each trial the child drops its job (as the platform would kill the process) and starts
the next trial on the same storage, so later trials resume from the saved cursor.

Subjects: ``@resumable`` with `FileStore`, ``@resumable`` with `ApifyStore` (the default in
an Actor), the same pushing one dataset item per cursor into its outbox (to the local
dataset, which writes a file per item, and to a stand-in of the platform's dataset API on
127.0.0.1, one HTTP request per batch through the SDK's own API client, as on the platform),
and the SDK's own ``Actor.use_state()`` dict updated per item. For the subjects with outputs,
``durable`` is the record (the cursor and its pending outputs) and ``delivered`` is when the
dataset holds the outputs that record covers, reported apart. Workloads: idle (1 ms
``asyncio.sleep`` per item), saturated (``asyncio.sleep(0)`` per item), CPU-bound (2 ms of
pure-Python work, then ``asyncio.sleep(0)``, per item). Trials alternate between the
subjects of a workload (the order flips each round), and the moment of sending is jittered
by 0-3 ms so that it falls anywhere in an item.

``--against DIR`` also runs every subject against the resumable of another checkout (a
``git worktree`` of an older commit, say), alternating with this one: before and after
figures from one run, on the same machine at the same time.

Run: ``python benchmarks/migration.py [--trials 20] [--against DIR]`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A child measures the resumable it is told to (`--against`), this checkout's by default.
sys.path.insert(0, os.environ.get("RESUMABLE_BENCH_ROOT") or str(ROOT))

from resumable.testing import PlatformEvents  # noqa: E402 - after making the package importable

WORKLOADS: dict[str, dict[str, float]] = {
    "idle": {"delay": 0.001, "cpu": 0.0},
    "saturated": {"delay": 0.0, "cpu": 0.0},
    "CPU-bound": {"delay": 0.0, "cpu": 0.002},
}
"""Per item: seconds of ``asyncio.sleep`` and seconds of pure-Python work."""

SUBJECTS: dict[str, str] = {
    "@resumable, FileStore": "file",
    "@resumable, ApifyStore": "apify",
    "@resumable, ApifyStore + outputs to the dataset": "outbox",
    "@resumable, ApifyStore + outputs to the platform's dataset API": "outbox-api",
    "Actor.use_state() auto-save": "use_state",
}
OUTPUTS = ("outbox", "outbox-api")
"""The subjects that deliver outputs: their record and their delivery are timed apart."""
MARKS = ("received", "listener", "save_start", "durable", "delivered")
WARM_UP = 0.03
"""Seconds a job works before the message is sent."""
TAIL = 0.02
"""Seconds the child keeps its job after the save, to see whether it starts more items."""
MIGRATING = {"timeRemainingSecs": 30}
CAP = 2.0
"""Seconds a trial waits for the save; a slower one counts as never done (``inf``)."""


class Child:
    """One Actor process running one subject's trials on one storage, against its own stand-in."""

    def __init__(
        self,
        subject: str,
        workload: dict[str, float],
        workdir: Path,
        cap: float,
        root: Path = ROOT,
    ) -> None:
        self.subject = subject
        self.workload = workload
        self.cap = cap
        self.workdir = workdir
        self.root = root
        self.platform = PlatformEvents()
        self.api: Any = None
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        await self.platform.__aenter__()
        env = os.environ | self.platform.env(self.workdir / "storage")
        env |= {"PYTHONPATH": str(self.root), "RESUMABLE_BENCH_ROOT": str(self.root)}
        if SUBJECTS[self.subject] == "outbox-api":
            from resumable.testing._dataset_api import DatasetApi  # noqa: PLC0415 - this subject's

            self.api = await DatasetApi().__aenter__()
            env |= self.api.env()
        with (self.workdir / "child.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--child",
                SUBJECTS[self.subject],
                "--delay",
                str(self.workload["delay"]),
                "--cpu",
                str(self.workload["cpu"]),
                "--state",
                str(self.workdir / "files"),
                "--cap",
                str(self.cap),
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        await self.platform.connected(timeout=60)

    async def trial(self) -> dict[str, Any]:
        """Start a job, send ``migrating`` once it is warm, and return what happened."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()
        assert (await self._line()) == "ready"
        await asyncio.sleep(random.uniform(0, 0.003))
        sent = time.monotonic()
        await self.platform.send("migrating", MIGRATING)
        result: dict[str, Any] = json.loads(await self._line())
        for mark in MARKS:
            result[f"{mark}_ms"] = (result.pop(mark, math.inf) - sent) * 1000
        return result

    async def _line(self) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        # The child's longest answer: the save's cap, the delivery's cap, the tail, and the
        # 60 s it gives a stalled save to land before the next trial (a busy machine).
        try:
            async with asyncio.timeout(2 * self.cap + TAIL + WARM_UP + 60 + 30):
                line = await self.process.stdout.readline()
        except TimeoutError:
            line = b""
        if not line:
            log = (self.workdir / "child.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {self.subject} Actor stopped answering; its log:\n{log}")
        return line.decode().strip()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        await self.platform.__aexit__(None, None, None)
        if self.api is not None:
            await self.api.__aexit__(None, None, None)


def summarize(samples: list[dict[str, Any]], cap: float) -> dict[str, Any]:
    """Medians and worsts of one subject's trials on one workload (``inf``: not within *cap*)."""

    def stats(name: str) -> tuple[float, float]:
        values = [s[name] for s in samples]
        return statistics.median(values), max(values)

    durable = stats("durable_ms")
    delivered = stats("delivered_ms")
    return {
        "trials": len(samples),
        "not_done": sum(1 for s in samples if math.isinf(s["durable_ms"])),
        "cap_ms": cap * 1000,
        "latency_ms_median": durable[0],
        "latency_ms_worst": durable[1],
        "delivered_ms_median": delivered[0],
        "delivered_ms_worst": delivered[1],
        "received_ms_median": stats("received_ms")[0],
        "listener_ms_median": stats("listener_ms")[0],
        "save_start_ms_median": stats("save_start_ms")[0],
        "started_after_received_median": stats("started_after_received")[0],
        "started_after_received_worst": stats("started_after_received")[1],
        "started_after_listener_median": stats("started_after_listener")[0],
        "started_after_listener_worst": stats("started_after_listener")[1],
        "stale_by_median": stats("stale_by")[0],
        "stale_by_worst": stats("stale_by")[1],
    }


async def measure(
    trials: int,
    workloads: list[str] | None = None,
    subjects: list[str] | None = None,
    cap: float = CAP,
    against: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Run *trials* migrations per subject and workload; return summaries by workload, subject.

    A save not done within *cap* seconds counts as never done: ``inf`` ms. With *against*,
    each subject also runs on the resumable of that checkout, as ``"<subject> [before]"``.
    """
    results: dict[str, dict[str, Any]] = {}
    roots = {"": ROOT} if against is None else {"": ROOT, " [before]": against}
    for workload in workloads or list(WORKLOADS):
        chosen = subjects or list(SUBJECTS)
        names = [name + suffix for suffix in roots for name in chosen]
        with tempfile.TemporaryDirectory(prefix="resumable-bench-migration-") as tmp:
            children = {}
            for name in chosen:
                for suffix, root in roots.items():
                    workdir = Path(tmp) / (SUBJECTS[name] + suffix.strip(" []"))
                    workdir.mkdir()
                    children[name + suffix] = Child(name, WORKLOADS[workload], workdir, cap, root)
            samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            try:
                for child in children.values():
                    await child.start()
                for round_ in range(trials):
                    order = names if round_ % 2 == 0 else list(reversed(names))
                    for name in order:
                        samples[name].append(await children[name].trial())
            finally:
                for child in children.values():
                    await child.stop()
        results[workload] = {name: summarize(samples[name], cap) for name in names}
    return results


def run(
    trials: int = 20,
    workloads: list[str] | None = None,
    subjects: list[str] | None = None,
    cap: float = CAP,
    against: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Measure every subject on every workload over *trials* migrations each."""
    return asyncio.run(measure(trials, workloads, subjects, cap, against))


def table(results: dict[str, dict[str, Any]]) -> str:
    """Render *results* as a markdown table: latency, its breakdown, and the work thrown away."""
    lines = [
        (
            "| workload | subject | trials | to durable, median | worst "
            "| received → listener → save → durable (medians) "
            "| outputs delivered (median / worst) "
            "| items started after received (median / worst) "
            "| after the save began (median / worst) "
            "| saved cursor behind latest (median / worst) |"
        ),
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for workload, by_subject in results.items():
        for name, r in by_subject.items():
            cap = r["cap_ms"]
            breakdown = " → ".join(
                format_ms(r[f"{mark}_ms_median"], cap)
                for mark in ("received", "listener", "save_start", "latency")
            )
            delivered = (
                f"{format_ms(r['delivered_ms_median'], cap)} / "
                f"{format_ms(r['delivered_ms_worst'], cap)}"
                if SUBJECTS[name.removesuffix(" [before]")] in OUTPUTS
                else "-"
            )
            lines.append(
                f"| {workload} | {name} | {r['trials']} | {format_ms(r['latency_ms_median'], cap)} "
                f"| {format_ms(r['latency_ms_worst'], cap)} | {breakdown} | {delivered} "
                f"| {r['started_after_received_median']:g} / "
                f"{r['started_after_received_worst']:g} "
                f"| {r['started_after_listener_median']:g} / "
                f"{r['started_after_listener_worst']:g} "
                f"| {r['stale_by_median']:g} / {r['stale_by_worst']:g} |"
            )
    return "\n".join(lines)


def format_ms(value: float, cap: float) -> str:
    """Milliseconds to one decimal; ``> cap`` for a save that was not done within the cap."""
    return f"> {cap:,.0f} ms" if math.isinf(value) else f"{value:,.1f} ms"


# -- the Actor each child runs --------------------------------------------------------------


async def child(args: argparse.Namespace) -> None:  # noqa: PLR0915 - one instrumented Actor
    """Run trials on the parent's command: ``go`` starts one, EOF ends the process."""
    # Only the child loads the SDK, and it instruments it before the Actor starts.
    from apify import Actor  # noqa: PLC0415
    from apify.events import ApifyEventManager  # noqa: PLC0415
    from crawlee._utils.recoverable_state import RecoverableState  # noqa: PLC0415
    from crawlee.events import EventPersistStateData  # noqa: PLC0415

    from resumable import FileStore, Outbox, Store, resumable  # noqa: PLC0415
    from resumable._engine import Job  # noqa: PLC0415
    from resumable._stores import Guard  # noqa: PLC0415
    from resumable.apify import ApifyStore, DatasetSink  # noqa: PLC0415
    from resumable.testing import use_stand_in  # noqa: PLC0415

    now = time.monotonic
    marks: dict[str, float] = {}
    starts: list[float] = []
    latest = [0]
    saved_cursor = [0]
    latest_at_durable = [0]
    saved = asyncio.Event()

    handle_message = ApifyEventManager._handle_platform_message

    async def on_message(self: ApifyEventManager, message: str | bytes) -> None:
        if "received" not in marks and b"migrating" in (
            message if isinstance(message, bytes) else message.encode()
        ):
            marks["received"] = now()
        await handle_message(self, message)

    ApifyEventManager._handle_platform_message = on_message  # type: ignore[method-assign]

    migrate = Job.migrate

    async def on_migrate(self: Job[Any], timeout: float | None = None) -> None:
        marks.setdefault("listener", now())
        await migrate(self, timeout)

    Job.migrate = on_migrate  # type: ignore[method-assign,assignment]

    trial = [0]

    def migration_save_begins() -> int | None:
        """Note the start of the first save after ``migrating``; return the trial it is for."""
        if "received" in marks and "save_start" not in marks:
            marks["save_start"] = now()
            return trial[0]
        return None

    def migration_save_done(cursor: int, of_trial: int) -> None:
        if of_trial != trial[0]:
            return  # a save of an earlier trial, stalled beyond its cap, came back late
        marks["durable"] = now()
        saved_cursor[0] = cursor
        latest_at_durable[0] = latest[0]
        saved.set()

    class TimedFileStore(FileStore):
        async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
            timed = migration_save_begins()
            await super().save(key, data, guard=guard)
            if timed is not None:
                migration_save_done(json.loads(data)["cursor"], timed)

    delivered = asyncio.Event()
    # (items the dataset holds once the migration's record is delivered, trial)
    delivering: list[tuple[int, int]] = []

    class TimedApifyStore(ApifyStore):
        async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
            timed = migration_save_begins()
            await super().save(key, data, guard=guard)
            if timed is not None:
                record = json.loads(data)
                migration_save_done(record["cursor"], timed)
                if args.subject in OUTPUTS:  # its outputs are delivered after it, timed apart
                    outbox = record["outbox"]
                    delivering.append((outbox["delivered"] + len(outbox["pending"]), timed))

    class TimedDatasetSink(DatasetSink):
        async def append(self, items: Sequence[Any], start: int) -> None:
            await super().append(items, start)
            if not delivering or start + len(items) < delivering[0][0]:
                return
            _, of_trial = delivering.pop()
            if of_trial == trial[0]:
                marks["delivered"] = now()
                delivered.set()

    persist_state = RecoverableState.persist_state

    async def on_persist_state(
        self: RecoverableState[Any], event_data: EventPersistStateData | None = None
    ) -> None:
        timed = None
        if event_data is not None and event_data.is_migrating:
            timed = migration_save_begins()
        if timed is not None:
            marks["listener"] = marks["save_start"]
            cursor = self.current_value.root["cursor"]
        await persist_state(self, event_data)
        if timed is not None:
            migration_save_done(cursor, timed)

    RecoverableState.persist_state = on_persist_state  # type: ignore[method-assign]

    async def item() -> None:
        starts.append(now())
        if args.cpu:
            spin_until = time.perf_counter() + args.cpu
            while time.perf_counter() < spin_until:
                pass
        await asyncio.sleep(args.delay)

    use_stand_in()
    async with Actor:
        store: Store = TimedFileStore(args.state) if args.subject == "file" else TimedApifyStore()

        @resumable(key="bench-migration", store=store)
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            while True:
                await item()
                cursor += 1
                latest[0] = cursor
                yield cursor

        dataset = None
        if args.subject == "outbox-api":  # the platform's API client, on the stand-in's URL
            from apify.storage_clients import ApifyStorageClient  # noqa: PLC0415
            from crawlee.storages import Dataset  # noqa: PLC0415

            dataset = await Dataset.open(id="bench-migration", storage_client=ApifyStorageClient())

        @resumable(key="bench-migration-out", store=store, sink=TimedDatasetSink(dataset))
        async def work_out(
            *, cursor: int = 0, out: Outbox[dict[str, int]] = Outbox.GIVEN
        ) -> AsyncIterator[int]:
            while True:
                await item()
                cursor += 1
                latest[0] = cursor
                out.push({"item": cursor})  # one dataset item per cursor
                yield cursor

        # Only this subject opens it: its auto-save would compete with the others' saves.
        if args.subject == "use_state":
            state = await Actor.use_state({"cursor": 0}, key="bench-migration-state")

        async def use_state_loop() -> None:
            cursor = int(str(state["cursor"]))
            while True:
                await item()
                cursor += 1
                latest[0] = cursor
                state["cursor"] = cursor

        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            marks.clear()
            starts.clear()
            saved.clear()
            delivered.clear()
            delivering.clear()
            trial[0] += 1
            jobs: dict[str, Callable[[], Coroutine[Any, Any, object]]] = {
                "use_state": use_state_loop,
                "outbox": work_out,
                "outbox-api": work_out,
            }
            task = asyncio.create_task(jobs.get(args.subject, work)())
            began = now()
            while now() - began < WARM_UP or len(starts) < 5:  # noqa: ASYNC110 - polls a list
                await asyncio.sleep(0.002)
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            # A save that takes longer than the cap is recorded as not done (infinite).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.cap):
                    await saved.wait()
            done = saved.is_set()
            if done and args.subject in OUTPUTS:  # the delivery, within the same cap
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(args.cap):
                        await delivered.wait()
            if done:
                await asyncio.sleep(TAIL)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            received = marks.get("received", math.inf)
            listener = marks.get("listener", math.inf)
            result = {
                **marks,
                "started_after_received": sum(1 for s in starts if s >= received),
                "started_after_listener": sum(1 for s in starts if s >= listener),
                "stale_by": latest_at_durable[0] - saved_cursor[0] if done else math.inf,
            }
            if not delivered.is_set():
                result.pop("delivered", None)
            if not done:
                result.pop("durable", None)
                # Let the stalled save land now that the loop is idle, so that it does not
                # hold the store's lock into the next trial.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(60):
                        await saved.wait()
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()


def main() -> None:
    """Run the benchmark (or, with ``--child``, one subject's Actor) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--against",
        type=Path,
        help="also measure the resumable of this checkout, alternating: before/after figures",
    )
    parser.add_argument("--child", dest="subject", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, default=CAP, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subject:
        asyncio.run(child(args))
        return
    print(table(run(args.trials, against=args.against)))


if __name__ == "__main__":
    main()
