"""A small shop to crawl, served on 127.0.0.1: listing pages, each linking to its products.

``/list/N`` links to products ``N * PER_PAGE`` to ``N * PER_PAGE + PER_PAGE - 1`` and to
``/list/N+1`` while there is one; ``/product/ID`` shows its name and price.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PER_PAGE = 10


class Shop(ThreadingHTTPServer):
    """The shop's web server, with *pages* listing pages."""

    daemon_threads = True

    def __init__(self, pages: int) -> None:
        super().__init__(("127.0.0.1", 0), _Pages)
        self.pages = pages

    @property
    def url(self) -> str:
        """Where the shop is served."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Shop:
        """Serve in a thread of this process."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class _Pages(BaseHTTPRequestHandler):
    server: Shop

    def do_GET(self) -> None:
        kind, _, number = self.path.strip("/").partition("/")
        if kind == "list" and number.isdigit() and int(number) < self.server.pages:
            page = int(number)
            links = "".join(
                f'<a class="product" href="/product/{i}">product {i}</a>'
                for i in range(page * PER_PAGE, (page + 1) * PER_PAGE)
            )
            if page + 1 < self.server.pages:
                links += f'<a class="next" href="/list/{page + 1}">next</a>'
            self._send(f"<html><body>{links}</body></html>")
        elif kind == "product" and number.isdigit():
            price = int(number) * 3 % 100
            self._send(f'<html><h1>Product {number}</h1><p class="price">{price}</p></html>')
        else:
            self.send_error(404)

    def _send(self, html: str) -> None:
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Keep the crawl's output readable: no access log."""
