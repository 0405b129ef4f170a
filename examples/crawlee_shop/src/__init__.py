"""The example crawler's code: ``apify run`` in the Actor's folder runs ``python -m src``."""
