"""Start the Actor: what ``apify run`` and the Actor's image run, ``python -m src``."""

import asyncio

from .main import main

asyncio.run(main())
