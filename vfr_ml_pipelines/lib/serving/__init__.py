"""Everything the live VFR reads: payloads, the Redis envelope, TTLs and VFR's tables."""
