"""The package's name on the package index and its version: the one place to change either.

The import name is ``resumable``; the distribution is ``resumable-jobs``, because the name
``resumable`` on the package index belongs to an unrelated project. Every install hint the
package prints is made here, so none can name the other project.
"""

from __future__ import annotations

__all__ = ["DISTRIBUTION", "__version__", "install_hint"]

DISTRIBUTION = "resumable-jobs"
__version__ = "0.2.0"


def install_hint(extra: str) -> str:
    """Return the command that installs the package with *extra*: ``pip install "...[extra]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'
