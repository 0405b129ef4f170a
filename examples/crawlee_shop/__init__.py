"""An example Crawlee crawler in an Apify Actor whose dataset items are exactly once.

The Actor is laid out as ``apify create`` lays out a Python Actor (``.actor/``,
``requirements.txt``, the package ``src/``), so ``apify run`` in this folder starts it.
This file only gives its modules names of their own in the repository
(``examples.crawlee_shop.src``), for the type checker and the tests.
"""
