"""Market data: providers and the synthetic market."""
