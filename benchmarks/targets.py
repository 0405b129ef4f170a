"""The targets the figures are held to: each one, what was measured, and whether it is met."""

from __future__ import annotations

import statistics
from typing import Any

import migration

Check = tuple[str, str, bool]
"""A target, what was measured against it, and whether it is met."""

COST_TARGET = 1.3
ADVANCE_TARGET = 1.4
OUTPUTS_TARGET = 2.0
EXPORTS_TARGET = 1.3
CONCURRENCY_TARGET = 1.5
CRAWLER_TARGET = 0.9
FILESTORE_TARGETS = {  # workload: (median, worst) in ms
    "idle": (3.0, 15.0),
    "saturated": (3.0, 15.0),
    "CPU-bound": (12.0, 50.0),
}
APIFY_WORST_TARGET = 50.0
RECORD_WITH_OUTPUTS_TARGET = 1.5  # a record with pending outputs, against the cursor alone
MiB = 1024 * 1024
DRIFT_TARGET = 0.15


def cost(results: dict[str, Any]) -> list[Check]:
    """The cursor path against the bare ``async for``."""
    checks = []
    for name, target in (
        ("@resumable, MemoryStore", COST_TARGET),
        ("@resumable, FileStore", COST_TARGET),
        ("job().advance() per item", ADVANCE_TARGET),
    ):
        ratio = results[name]["ratio"]
        measured = f"{ratio:.2f}x"
        call = results.get("floor, a method call per item")
        if name.startswith("job()") and call is not None:
            # What one Python method call that keeps the cursor costs, whatever it does.
            measured += f" (a bare method call: {call['ratio']:.2f}x)"
        checks.append((f"{name}: <= {target}x the floor", measured, ratio <= target))
    return checks


def outputs(results: dict[str, Any]) -> list[Check]:
    """``out.push`` + yield against the list-append loop."""
    ratio = results["@resumable, out.push (memory sink)"]["ratio"]
    measured = f"{ratio:.2f}x"
    if "bare loop, orjson at the push" in results:
        # The least a push costs that refuses an unfit item there and hands the sink values.
        measured += f" (encoding alone: {results['bare loop, orjson at the push']['ratio']:.2f}x)"
    return [
        (
            f"`out.push` + yield (memory sink): <= {OUTPUTS_TARGET:g}x a list-append loop",
            measured,
            ratio <= OUTPUTS_TARGET,
        )
    ]


def exports(results: dict[str, Any]) -> list[Check]:
    """A CSV file exported through the outbox against a loop writing the file itself."""
    ratio = results["@resumable, out.push (JsonLinesSink)"]["ratio"]
    return [
        (
            f"CSV to JSON Lines through `out`: <= {EXPORTS_TARGET:g}x a loop with json.dumps",
            f"{ratio:.2f}x",
            ratio <= EXPORTS_TARGET,
        )
    ]


def crawler(results: dict[str, Any]) -> list[Check]:
    """A crawler's pages per second under `exactly_once` against the same crawler alone."""
    rates = results["rates"]
    plain, once = (statistics.median(rates[mode]) for mode in ("plain", "exactly-once"))
    return [
        (
            f"exactly_once(crawler): >= {CRAWLER_TARGET:g}x the crawler's pages per second",
            f"{once / plain:.2f}x",
            once / plain >= CRAWLER_TARGET,
        )
    ]


def concurrency(results: dict[str, Any]) -> list[Check]:
    """`concurrently` against a bounded TaskGroup, over a range."""
    ratio = results["ratio"]
    target = f"`concurrently` <= {CONCURRENCY_TARGET}x a bounded TaskGroup"
    return [(target, f"{ratio:.2f}x", ratio <= CONCURRENCY_TARGET)]


def scale(results: dict[str, Any]) -> list[Check]:
    """Memory, cost per item and writes over a long run."""
    growth = results["rss_growth_bytes"]
    drift = results["cost_drift_after_first"]
    writes, bound = results["writes"], results["writes_bound"]
    return [
        ("memory growth over the run < 1 MiB", f"{growth / 1024:+.0f} KiB", growth < MiB),
        (
            f"cost per item constant: each million after the first within {DRIFT_TARGET:.0%}",
            f"max/min {drift:.2f}x",
            drift <= 1 + DRIFT_TARGET,
        ),
        ("writes within the policy", f"{writes} <= {bound}", writes <= bound),
    ]


def migrations(results: dict[str, Any]) -> list[Check]:
    """Time to safety on ``migrating``, per workload."""
    checks: list[Check] = []
    for workload, by_subject in results.items():
        checks += _migration(workload, by_subject)
    return checks


def _migration(workload: str, by_subject: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    file = by_subject.get("@resumable, FileStore")
    if file is not None and workload in FILESTORE_TARGETS:
        median, worst = FILESTORE_TARGETS[workload]
        got = (file["latency_ms_median"], file["latency_ms_worst"])
        checks.append(
            (
                f"{workload}, FileStore: median <= {median:g} ms, worst <= {worst:g} ms",
                f"{got[0]:.1f} ms, {got[1]:.1f} ms",
                got[0] <= median and got[1] <= worst,
            )
        )
    apify = by_subject.get("@resumable, ApifyStore")
    sdk = by_subject.get("Actor.use_state() auto-save")
    if apify is not None and sdk is not None:
        ours, theirs = apify["latency_ms_median"], sdk["latency_ms_median"]
        worst = apify["latency_ms_worst"]
        checks.append(
            (
                f"{workload}, ApifyStore: median <= the SDK's, worst <= {APIFY_WORST_TARGET:g} ms",
                f"{_ms(ours, apify)} vs {_ms(theirs, sdk)}, worst {_ms(worst, apify)}",
                ours <= theirs and worst <= APIFY_WORST_TARGET,
            )
        )
    for name in (n for n in by_subject if migration.SUBJECTS.get(n) in migration.OUTPUTS):
        with_outputs = by_subject[name]
        if apify is not None:
            ratio = with_outputs["latency_ms_median"] / apify["latency_ms_median"]
            target = f"{workload}, {name}: record <= {RECORD_WITH_OUTPUTS_TARGET:g}x cursor alone"
            ours = _ms(with_outputs["latency_ms_median"], with_outputs)
            alone = _ms(apify["latency_ms_median"], apify)
            checks.append(
                (target, f"{ours} vs {alone}: {ratio:.2f}x", ratio <= RECORD_WITH_OUTPUTS_TARGET)
            )
    ours_only = {n: r for n, r in by_subject.items() if n.startswith("@resumable")}
    if ours_only:
        after_save = max(r["started_after_listener_worst"] for r in ours_only.values())
        behind = max(r["stale_by_worst"] for r in ours_only.values())
        after_received = max(r["started_after_received_worst"] for r in ours_only.values())
        checks.append(
            (
                f"{workload}, @resumable: 0 items started once saving began, saved cursor 0 behind",
                f"{after_save:g} items, {behind:g} behind (worst of our subjects)",
                after_save == 0 and behind == 0,
            )
        )
        checks.append(
            (
                f"{workload}, @resumable: 0 items started after the SDK received `migrating`",
                f"{after_received:g} (worst of our subjects)",
                after_received == 0,
            )
        )
    return checks


def _ms(value: float, result: dict[str, Any]) -> str:
    return migration.format_ms(value, result["cap_ms"])


def table(checks: list[Check]) -> str:
    """The checks as a markdown table."""
    lines = ["| target | measured | met |", "| --- | --- | :---: |"]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in checks]
    return "\n".join(lines)
