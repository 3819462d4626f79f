-- The outcome fills' memory (lib/serving/outcomes.py): each fill records the newest price
-- load it saw (raw_prices.loaded_at), so the next one recomputes only the outcomes still
-- pending and those whose label window reaches a price loaded since (a restatement);
-- a full recompute (backfills) is a flag of the fill.
CREATE TABLE IF NOT EXISTS vfr_ml.outcome_fills (
    id bigserial PRIMARY KEY,
    filled_at timestamptz NOT NULL DEFAULT now(),
    mode text NOT NULL CHECK (mode IN ('full', 'incremental')),
    prices_seen_until timestamptz,
    restated_from date,
    considered integer NOT NULL,
    updated integer NOT NULL,
    written integer NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_prices_loaded_at ON vfr_ml.raw_prices (loaded_at);
