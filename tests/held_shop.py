"""The Crawlee example's shop with one page held until the test lets it go.

`Shop` (``examples/crawlee_shop/src/shop.py``) is the shop itself: listing pages of
products. `HeldShop` answers one of its paths only once the test sets `HeldShop.release`,
so a crawl is stopped while that page is in flight, at a point the test waited for
(`HeldShop.asked`).
"""

from __future__ import annotations

import threading

from examples.crawlee_shop.src.shop import Shop, _Pages

__all__ = ["HeldShop"]


class HeldShop(Shop):
    """The example's shop, whose page at *held* (``/list/3``, ``/product/7``) waits.

    Args:
        pages: Listing pages, as `Shop` takes.
        held: The path that answers only once `release` is set (or after *timeout*).
        timeout: Seconds a held request waits at most, so a failed test cannot hang on it.
    """

    def __init__(self, pages: int, held: str, *, timeout: float = 120) -> None:
        super().__init__(pages)
        self.RequestHandlerClass = _HeldPages
        self.held = held
        self.timeout = timeout
        self.asked = threading.Event()
        """Set when the held page was first asked for."""
        self.release = threading.Event()
        """Set by the test to let the held page (and every later ask of it) through."""


class _HeldPages(_Pages):
    server: HeldShop

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path == self.server.held and not self.server.release.is_set():
            self.server.asked.set()
            self.server.release.wait(self.server.timeout)
        super().do_GET()
