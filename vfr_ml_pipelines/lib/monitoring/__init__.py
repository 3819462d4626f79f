"""Monitoring core: feature drift, the drift sensor's decision, live performance (concept
drift), serving health and webhook alerts. Plain pandas / numpy / scipy, never dagster: the
assets and sensors in `defs/monitoring/` wire resources to these functions and take their
config defaults from the frozen dataclasses here."""
