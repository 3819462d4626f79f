"""The pure core: plain Python that never imports dagster (DESIGN principle 1)."""
