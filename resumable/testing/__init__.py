"""Test helpers for resumable jobs and the Actors that run them.

`assert_resumes` crashes a job at every yield (or a sample of them), resumes it, and checks
that it carries on exactly where the uninterrupted run went. `FailingStore` wraps a store and
makes it fail on purpose, to test what a job does when its store is down; `FailingSink` does
the same to a sink (by default a `MemorySink`, which keeps a list); inside `fast_timing`
jobs give up on a failing store within a second instead of ten. The pytest plugin that
installing resumable registers offers the ``memory_store``, ``failing_store`` and
``resumable_fast_timing`` fixtures. `AwsMetadata`, `GcpMetadata` and `AzureMetadata` are
stand-ins of the clouds' metadata services on 127.0.0.1, speaking each one's protocol, to
test a job's `resumable.cloud.PreemptionNotice` without a cloud (`BlackHole` is an address
that never answers).

With the ``apify`` extra installed, `ActorProcess` runs your unmodified Actor in a child
process against `PlatformEvents` (a stand-in of the Apify platform's events websocket on
127.0.0.1), to send it ``migrating``, ``aborting`` or ``persistState``, kill it, start it
again and read its dataset and key-value store (also the ``actor_process`` and
``platform_events`` fixtures).
"""

from __future__ import annotations

from resumable.testing._assert_resumes import Effects, assert_resumes
from resumable.testing._cloud import (
    AwsMetadata,
    AzureMetadata,
    BlackHole,
    GcpMetadata,
    MetadataServer,
)
from resumable.testing._failing_sink import FailingSink, MemorySink, SinkOperation
from resumable.testing._failing_store import FailingStore, Operation
from resumable.testing._fast_timing import fast_timing

try:
    from resumable.testing._actor import ActorProcess
    from resumable.testing._platform import PlatformEvents, use_stand_in
except ImportError:  # pragma: no cover - the apify extra brings the SDK and websockets
    _HAVE_PLATFORM = False
else:
    _HAVE_PLATFORM = True

__all__ = [
    "AwsMetadata",
    "AzureMetadata",
    "BlackHole",
    "Effects",
    "FailingSink",
    "FailingStore",
    "GcpMetadata",
    "MemorySink",
    "MetadataServer",
    "Operation",
    "SinkOperation",
    "assert_resumes",
    "fast_timing",
]
if _HAVE_PLATFORM:
    __all__ += ["ActorProcess", "PlatformEvents", "use_stand_in"]
