-- Feature store, PostgreSQL side (docs/feature_store.md has the measurements behind the
-- split). Feature history lives in the offline Parquet store
-- (vfr_ml_pipelines/lib/features/offline_store.py); PostgreSQL keeps what must be read fast
-- and by other programs: the latest vector per symbol, and a registry of feature sets.

CREATE SCHEMA IF NOT EXISTS vfr_ml;

-- One row per feature set: its columns, extent and lineage, mirrored from the offline
-- store's _manifest.json so that SQL clients (VFR, dashboards) can see what is stored.
CREATE TABLE IF NOT EXISTS vfr_ml.feature_sets (
    feature_set text PRIMARY KEY,
    version text,
    description text,
    columns text[] NOT NULL,
    row_count bigint NOT NULL DEFAULT 0 CHECK (row_count >= 0),
    first_day date,
    last_day date,
    lineage jsonb NOT NULL DEFAULT '{}'::jsonb,
    store_uri text,
    written_at timestamptz NOT NULL DEFAULT now(),
    CHECK (first_day IS NULL OR last_day IS NULL OR first_day <= last_day)
);

-- The latest feature vector of each (feature set, symbol): the serving path reads 25
-- symbols x 50 features in one indexed round trip. names[i] is the name of values[i];
-- a NULL element is a missing feature. "values" is a reserved word: always quote it.
-- A vector is only ever replaced by one of the same or a later trade_date.
CREATE TABLE IF NOT EXISTS vfr_ml.feature_latest (
    feature_set text NOT NULL,
    symbol varchar(20) NOT NULL,
    trade_date date NOT NULL,
    names text[] NOT NULL,
    "values" double precision[] NOT NULL,
    completeness double precision NOT NULL CHECK (completeness BETWEEN 0 AND 1),
    quality_score double precision NOT NULL CHECK (quality_score BETWEEN 0 AND 1),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feature_set, symbol),
    CHECK (cardinality(names) = cardinality("values"))
);
