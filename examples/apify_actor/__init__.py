"""An example Apify Actor whose main loop survives migrations (see README.md)."""
