"""Local runs that empty the Actor's default key-value store before a job can resume from it.

Two things delete a local run's default storages before the Actor's code reads them:

- Crawlee, as the store opens, while ``CRAWLEE_PURGE_ON_START`` is true (its default);
- the Apify CLI: ``apify run`` without ``--no-purge`` or ``--resurrect`` deletes their files
  before it starts the Actor. When the Actor has an input schema (or is given ``--input``),
  the CLI hands it the input under a key of its own (``__CLI_INPUT``) and starts it with
  ``CRAWLEE_PURGE_ON_START=0`` whether it purged or not, so that variable says nothing, and
  the CLI overrides whatever the shell set it to.

Either way a stopped run's saved state is gone, and the job would start over in silence:
this module warns, once per process, and says how to keep the state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from apify import Configuration as ActorConfiguration
from crawlee.configuration import Configuration

from resumable._errors import warn

__all__ = ["warn_if_purged"]

CLI_INPUT_PREFIX = "__CLI_"
"""How the Apify CLI (1.x) prefixes the key of the copy of the input it hands an Actor."""

_warned = False


def started_by_apify_cli(configuration: Configuration) -> bool:
    """Return whether the Apify CLI started this Actor and decided itself what to purge."""
    return isinstance(configuration, ActorConfiguration) and configuration.input_key.startswith(
        CLI_INPUT_PREFIX
    )


def warn_if_purged(
    directory: Path,
    configuration: Configuration,
    records: Callable[[], Sequence[str]],
    *,
    in_actor: bool = True,
) -> None:
    """Warn (once per process) when the default key-value store in *directory* was purged.

    Args:
        directory: The default key-value store's directory in local storage.
        configuration: The configuration the store was opened with.
        records: Returns the keys of the job records the store holds now; called only when
            the Apify CLI started the Actor, whose purge leaves no other trace.
        in_actor: Whether the store is used inside ``async with Actor:``; outside it the
            warning says which store to use instead.
    """
    global _warned  # noqa: PLW0603 - one warning per process, however many jobs
    if _warned:
        return
    storage = directory.parent.parent
    if configuration.purge_on_start and not in_actor:
        _warned = True
        warn(
            f"ApifyStore() is used outside `async with Actor:`, so it keeps the job state in "
            f"Crawlee's local storage in {storage}, whose default key-value store Crawlee "
            "purges each time a process first opens it (CRAWLEE_PURGE_ON_START is not false): "
            "every run starts fresh and never resumes. Outside an Actor, use the default "
            "store (FileStore('.resumable')), ApifyStore.local(DIR), which never purges, or "
            "set CRAWLEE_PURGE_ON_START=false."
        )
        return
    if configuration.purge_on_start:
        happened = (
            f"The key-value store in {directory} is purged each time the Actor starts locally "
            "(CRAWLEE_PURGE_ON_START is not false), so the job state resumable saves there is "
            "gone before a restarted run can resume from it."
        )
    elif started_by_apify_cli(configuration) and not records():
        happened = (
            f"`apify run` started this Actor with no job state in the key-value store in "
            f"{directory}: without --no-purge or --resurrect, `apify run` empties the Actor's "
            "default storages before it starts, so a stopped run starts over."
        )
    else:
        return
    _warned = True
    warn(
        f"{happened} To resume a local run, start it with `apify run --no-purge` (or `apify "
        "run --resurrect`); when you start Python yourself, with CRAWLEE_PURGE_ON_START=false "
        "(`apify run` sets that variable itself). `python -m resumable --store "
        f"apify:{storage} list` shows the saved state; `reset KEY` forgets a job's. On the "
        "Apify platform nothing is purged."
    )
