"""An example Apify Actor: a Crawlee crawler, each product in the dataset and charged once.

See README.md.

The Actor is laid out as ``apify create`` lays out a Python Actor (``.actor/``,
``requirements.txt``, the package ``src/``), so ``apify run`` in this folder starts it.
This file only gives its modules names of their own in the repository
(``examples.apify_actor.src``), for the type checker and the tests.
"""
