"""Run an unmodified Actor against the stand-in platform, as `ActorProcess` does in its child.

``python -m resumable.testing._launch -m MODULE [ARGS...]`` or
``python -m resumable.testing._launch PATH [ARGS...]``: prepare this process's SDK for the
`PlatformEvents` whose environment it runs with (`use_stand_in`), then run the Actor as
``python -m MODULE ARGS...`` or ``python PATH ARGS...`` would.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from resumable.testing._platform import use_stand_in

_USAGE = "usage: python -m resumable.testing._launch (-m MODULE | PATH) [ARGS...]"


def main(argv: list[str]) -> None:
    """Run the Actor that *argv* names, after connecting its SDK to the stand-in."""
    if argv[:1] == ["-m"] and len(argv) >= 2:
        module = argv[1]
        sys.argv = [module, *argv[2:]]
        use_stand_in()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    elif argv and not argv[0].startswith("-"):
        path = argv[0]
        sys.argv = [path, *argv[1:]]
        sys.path[0] = str(Path(path).resolve().parent)  # as `python PATH` sets it
        use_stand_in()
        runpy.run_path(path, run_name="__main__")
    else:
        raise SystemExit(_USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
