"""Start the Actor: what ``apify run`` and the Actor's image run, ``python -m src [SHOP_URL]``.

The shop to crawl is the command line's argument, else the Actor input's ``shopUrl``; with
neither, the Actor serves a 5-page shop itself, on 127.0.0.1.
"""

import asyncio
import sys

from .main import main

asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
