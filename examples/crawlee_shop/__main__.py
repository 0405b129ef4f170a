"""Run the example: ``python -m examples.crawlee_shop [SHOP_URL]`` from the repository's root.

Without a URL it serves a 5-page shop itself, on 127.0.0.1.
"""

import asyncio
import sys

from .main import main
from .shop import Shop

if len(sys.argv) > 1:
    asyncio.run(main(sys.argv[1]))
else:
    with Shop(pages=5) as shop:
        asyncio.run(main(shop.start().url))
