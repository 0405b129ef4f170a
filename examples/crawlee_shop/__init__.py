"""An example Crawlee crawler in an Apify Actor whose dataset items are exactly once."""
