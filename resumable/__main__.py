"""``python -m resumable``: the command line (see `resumable._cli`)."""

import sys

from resumable._cli import main

if __name__ == "__main__":
    sys.exit(main())
