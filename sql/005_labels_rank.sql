-- Models train on the per-day rank of the forward return (robust to fat tails).
ALTER TABLE vfr_ml.labels ADD COLUMN IF NOT EXISTS rank_return double precision;
