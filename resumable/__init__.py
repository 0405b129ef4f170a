"""Long-running async jobs that survive restarts.

A job is an async generator that yields cursors ("everything before me is done");
resumable persists the latest one when it matters and hands it back on the next start.
"""

from resumable._concurrency import Watermark, concurrently
from resumable._controls import Controls
from resumable._decorator import JobFunction, SyncJobFunction, resumable
from resumable._distribution import __version__ as __version__
from resumable._engine import Job
from resumable._errors import (
    CorruptStateError,
    CursorTypeError,
    FinishedJobError,
    InvalidKeyError,
    InvalidOptionError,
    JobDefinitionError,
    ResumableError,
    ResumableWarning,
    SinkError,
    StaleWriterError,
    StoreError,
)
from resumable._job import job
from resumable._outbox import Outbox
from resumable._progress import Progress
from resumable._record import Outcome, Record
from resumable._run import Run
from resumable._sink import JsonLinesSink, Sink
from resumable._stores import FileStore, Guard, MemoryStore, Store
from resumable._sync import SyncJob
from resumable._timing import Timing
from resumable._triggers import Signals, Trigger

__all__ = [
    "Controls",
    "CorruptStateError",
    "CursorTypeError",
    "FileStore",
    "FinishedJobError",
    "Guard",
    "InvalidKeyError",
    "InvalidOptionError",
    "Job",
    "JobDefinitionError",
    "JobFunction",
    "JsonLinesSink",
    "MemoryStore",
    "Outbox",
    "Outcome",
    "Progress",
    "Record",
    "ResumableError",
    "ResumableWarning",
    "Run",
    "Signals",
    "Sink",
    "SinkError",
    "StaleWriterError",
    "Store",
    "StoreError",
    "SyncJob",
    "SyncJobFunction",
    "Timing",
    "Trigger",
    "Watermark",
    "concurrently",
    "job",
    "resumable",
]
