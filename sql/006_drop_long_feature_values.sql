-- Feature history moved to the offline Parquet store (docs/feature_store.md); the long
-- PostgreSQL table of the first version is no longer read or written.
DROP TABLE IF EXISTS vfr_ml.feature_values;
