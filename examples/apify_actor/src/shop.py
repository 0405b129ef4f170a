"""A small shop to crawl, served on 127.0.0.1, shaped like a real one: a graph of pages.

``/list/N`` links to the products ``N * per_page`` to ``N * per_page + per_page - 1`` and to
``/list/N+1`` while there is one. ``/product/ID`` shows the product's name and price and
links to three other products and back to its listing, so a crawler finds each product on
many pages and enqueues it many times, as on a real shop.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Shop(ThreadingHTTPServer):
    """The shop's web server: *pages* listing pages of *per_page* products each.

    Use it as ``with Shop(pages=10) as shop: shop.start()``; the block's end stops it.

    Args:
        pages: Listing pages.
        per_page: Products linked from each listing page.
        delay: Seconds each product page takes to serve, as a real site's latency does
            (a slow site keeps the crawler's requests in flight).
        port: The port to serve on; a free one by default.
    """

    daemon_threads = True

    def __init__(self, pages: int, per_page: int = 10, delay: float = 0.0, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Pages)
        self.pages = pages
        self.per_page = per_page
        self.delay = delay
        self._stopped = threading.Event()
        self._serving = False

    @property
    def products(self) -> int:
        """How many products the shop has."""
        return self.pages * self.per_page

    @property
    def url(self) -> str:
        """Where the shop is served."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def start_url(self) -> str:
        """The first listing page, where a crawl starts."""
        return f"{self.url}/list/0"

    def start(self) -> Shop:
        """Serve in a thread of this process until the block the shop is used in ends."""
        self._serving = True
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving and close the socket."""
        self._stopped.set()
        if self._serving:
            self.shutdown()
        self.server_close()

    def related(self, product: int) -> list[int]:
        """The products a product page links to."""
        total = self.products
        return [(product * 7 + 1) % total, (product + 1) % total, (product * 3 + 2) % total]

    def page(self, path: str) -> str | None:
        """The HTML of *path*, or ``None`` if the shop has no such page."""
        kind, _, number = path.strip("/").partition("/")
        if not number.isdigit():
            return None
        n = int(number)
        if kind == "list" and n < self.pages:
            links = "".join(
                f'<a class="product" href="/product/{i}">product {i}</a>'
                for i in range(n * self.per_page, (n + 1) * self.per_page)
            )
            if n + 1 < self.pages:
                links += f'<a class="next" href="/list/{n + 1}">next</a>'
            return f"<html><body>{links}</body></html>"
        if kind == "product" and n < self.products:
            if self.delay:
                self._stopped.wait(self.delay)
            links = "".join(
                f'<a class="product" href="/product/{i}">see {i}</a>' for i in self.related(n)
            )
            links += f'<a class="list" href="/list/{n // self.per_page}">back</a>'
            return f'<html><h1>Product {n}</h1><p class="price">{n * 3 % 100}</p>{links}</html>'
        return None

    def handle_error(self, request: object, client_address: object) -> None:
        """A crawler killed mid-request closes its connection: not worth a traceback."""


class _Pages(BaseHTTPRequestHandler):
    server: Shop

    def do_GET(self) -> None:
        html = self.server.page(self.path)
        if html is None:
            self.send_error(404)
            return
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Keep the crawl's output readable: no access log."""
