"""The command line: look at and manage the state that jobs persisted in a store.

``python -m resumable [--store LOCATION] COMMAND``, also installed as ``resumable``. Every
command reads and writes through the same `Store` a job uses, so what it shows is what the
next run will resume from.
"""

from resumable._cli._main import main

__all__ = ["main"]
