"""The example Actor's graph-shaped shop, with a gate the test opens, for crawls stopped at a point.

`Shop` (``examples/apify_actor/src/shop.py``) is the shop itself: listings and products that
link to each other, so one product is enqueued many times. `GatedShop` serves its product
pages only while the test lets it, so that a crawl cannot end before the test has killed,
migrated or interrupted it at the point it waited for. A crawl that is stopping waits for
its requests in flight, so the test lets those through once the crawl has noticed the stop.
"""

from __future__ import annotations

import math
import threading

from examples.apify_actor.src.shop import Shop

__all__ = ["GatedShop", "Shop", "product_of", "stop_noticed"]

STOP_NOTICED = ("Pausing... Press CTRL+C again", "and stopping")
"""What a crawl logs once a Ctrl-C has reached it: Crawlee's own line when its SIGINT handler
took the signal, the job's when the job's handler did."""


def stop_noticed(log: str) -> bool:
    """Whether the crawl's *log* shows that it took the Ctrl-C: from then on it starts no new
    request, and those in flight may be let through the gate to finish."""
    return any(line in log for line in STOP_NOTICED)


def product_of(url: str) -> int:
    """The product number of a product page's URL."""
    return int(url.rsplit("/", 1)[1])


class GatedShop(Shop):
    """The shop, serving product pages only as far as `allow` lets it; the rest wait.

    A crawler's requests for product pages past the allowance wait at the gate (its listing
    pages are served at once). After a kill, `cut` turns away the requests still waiting:
    their crawler is gone, and they must not use up what `allow` gives the next run.
    """

    def __init__(self, pages: int, per_page: int = 10, delay: float = 0.0) -> None:
        super().__init__(pages, per_page, delay)
        self._gate = threading.Condition()
        self._served = 0
        self._limit: float = 0
        self._generation = 0

    def __exit__(self, *exc: object) -> None:
        """Turn away what waits at the gate, then stop serving."""
        self.cut()
        super().__exit__(*exc)

    def allow(self, more: float = math.inf) -> None:
        """Let *more* product pages through from now on (all of them by default)."""
        with self._gate:
            self._limit = self._served + more
            self._gate.notify_all()

    def cut(self) -> None:
        """Turn away every request waiting at the gate, and close it."""
        with self._gate:
            self._generation += 1
            self._limit = self._served
            self._gate.notify_all()

    def page(self, path: str) -> str | None:
        """The page, once the gate lets a product page through; ``None`` if it was cut."""
        if path.startswith("/product/"):
            with self._gate:
                generation = self._generation
                self._gate.wait_for(
                    lambda: self._served < self._limit or generation != self._generation
                )
                if generation != self._generation:
                    return None
                self._served += 1
        return super().page(path)
