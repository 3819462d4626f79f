-- This project's own warehouse, in schema vfr_ml (VFR's tables stay in public).
-- Every table has a natural primary key so that re-running an asset upserts, never duplicates.

CREATE SCHEMA IF NOT EXISTS vfr_ml;

CREATE TABLE IF NOT EXISTS vfr_ml.universe (
    symbol varchar(20) PRIMARY KEY,
    sector text NOT NULL,
    listed_on date NOT NULL,
    source text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vfr_ml.raw_prices (
    symbol varchar(20) NOT NULL,
    trade_date date NOT NULL,
    open double precision NOT NULL CHECK (open > 0),
    high double precision NOT NULL CHECK (high > 0),
    low double precision NOT NULL CHECK (low > 0),
    close double precision NOT NULL CHECK (close > 0),
    adj_close double precision NOT NULL CHECK (adj_close > 0),
    volume bigint NOT NULL CHECK (volume >= 0),
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, trade_date),
    CHECK (low <= open AND low <= close AND high >= open AND high >= close)
);
CREATE INDEX IF NOT EXISTS raw_prices_trade_date ON vfr_ml.raw_prices (trade_date);

-- Long format: one row per (feature set, day, symbol, feature); NULL means "not computable
-- yet" (warm-up windows, recent listings), never a silently filled value.
CREATE TABLE IF NOT EXISTS vfr_ml.feature_values (
    feature_set text NOT NULL,
    trade_date date NOT NULL,
    symbol varchar(20) NOT NULL,
    feature_name text NOT NULL,
    value double precision,
    PRIMARY KEY (feature_set, trade_date, symbol, feature_name)
);

-- A label is the forward return from trade_date's close; known_date is the first day on
-- which it is observable, which is what purging and "no look-ahead" checks compare to.
CREATE TABLE IF NOT EXISTS vfr_ml.labels (
    horizon varchar(4) NOT NULL,
    trade_date date NOT NULL,
    symbol varchar(20) NOT NULL,
    forward_return double precision NOT NULL,
    excess_return double precision NOT NULL,
    known_date date NOT NULL,
    PRIMARY KEY (horizon, trade_date, symbol),
    CHECK (known_date > trade_date)
);

CREATE TABLE IF NOT EXISTS vfr_ml.predictions (
    as_of_date date NOT NULL,
    horizon varchar(4) NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    symbol varchar(20) NOT NULL,
    expected_return double precision NOT NULL,
    probability double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
    direction varchar(4) NOT NULL CHECK (direction IN ('BUY', 'SELL', 'HOLD')),
    confidence double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    current_price double precision NOT NULL CHECK (current_price > 0),
    features jsonb NOT NULL,
    feature_completeness double precision NOT NULL,
    predicted_at timestamptz NOT NULL,
    PRIMARY KEY (as_of_date, horizon, model_name, model_version, symbol)
);
