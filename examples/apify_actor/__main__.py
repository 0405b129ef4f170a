"""Run the example Actor: ``python -m examples.apify_actor`` from the repository's root."""

import asyncio

from .main import main

asyncio.run(main())
