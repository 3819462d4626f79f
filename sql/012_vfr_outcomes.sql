-- What VFR's own code reads besides the prediction cache: `ml_predictions` rows of type
-- 'direction' (PredictionLogger's meaning), the outcomes table and materialized views of
-- VFR's database/migrations/ml_outcomes_tracking.sql (read by GET /api/ml/metrics and
-- written by scripts/ml/track-outcomes.ts), and the indexes VFR's migrations create on the
-- ML tables. Every statement is IF NOT EXISTS / OR REPLACE with VFR's own names and
-- definitions, so running beside VFR's migrations (in either order) is harmless.

-- The feature-row quality of each stored prediction (payloads.row_quality: the same number
-- in the prediction payload, the Redis feature vector and ml_feature_store).
ALTER TABLE vfr_ml.predictions ADD COLUMN IF NOT EXISTS feature_quality_score double precision;

-- The session each of our ml_predictions rows is for (ml_predictions.prediction_timestamp
-- is when the prediction was made, as VFR's PredictionLogger writes it), with the expected
-- return the direction row does not carry. Outcomes are matched through it.
CREATE TABLE IF NOT EXISTS vfr_ml.ml_prediction_sessions (
    prediction_id uuid PRIMARY KEY,
    as_of_date date NOT NULL,
    horizon varchar(4) NOT NULL,
    symbol varchar(20) NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    expected_return double precision NOT NULL,
    UNIQUE (as_of_date, horizon, symbol)
);

-- ----------------------------------------------------------- VFR's ml_outcomes (verbatim)
CREATE TABLE IF NOT EXISTS ml_outcomes (
    outcome_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prediction_id UUID NOT NULL REFERENCES ml_predictions(prediction_id) ON DELETE CASCADE,
    ticker VARCHAR(20) NOT NULL,
    prediction_timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    outcome_timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    days_elapsed INTEGER NOT NULL,
    predicted_direction VARCHAR(10) NOT NULL,
    predicted_value DECIMAL(15,8),
    predicted_confidence DECIMAL(5,4) NOT NULL,
    initial_price DECIMAL(12,4) NOT NULL,
    final_price DECIMAL(12,4) NOT NULL,
    actual_return DECIMAL(10,6) NOT NULL,
    actual_direction VARCHAR(10) NOT NULL,
    direction_correct BOOLEAN NOT NULL,
    return_error DECIMAL(10,6),
    confidence_calibration DECIMAL(5,4),
    market_return DECIMAL(10,6),
    sector_return DECIMAL(10,6),
    relative_performance DECIMAL(10,6),
    data_complete BOOLEAN DEFAULT true,
    outlier_flag BOOLEAN DEFAULT false,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    CONSTRAINT valid_returns CHECK (
        actual_return BETWEEN -1.0 AND 10.0 AND
        (market_return IS NULL OR market_return BETWEEN -1.0 AND 10.0) AND
        (sector_return IS NULL OR sector_return BETWEEN -1.0 AND 10.0)
    )
);

CREATE INDEX IF NOT EXISTS idx_outcomes_ticker_time ON ml_outcomes (ticker, outcome_timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_outcomes_prediction ON ml_outcomes (prediction_id);
CREATE INDEX IF NOT EXISTS idx_outcomes_direction_correct ON ml_outcomes (direction_correct, outcome_timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_outcomes_days_elapsed ON ml_outcomes (days_elapsed);
-- VFR's tracker inserts with ON CONFLICT (prediction_id) DO NOTHING, which PostgreSQL only
-- accepts with a unique index on prediction_id; VFR's migration has a plain one, so its
-- tracker fails on every insert. One outcome per prediction is what both writers mean.
CREATE UNIQUE INDEX IF NOT EXISTS ml_outcomes_prediction_id_unique ON ml_outcomes (prediction_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS ml_daily_performance AS
SELECT
    DATE(outcome_timestamp) as date,
    COUNT(*) as total_predictions,
    SUM(CASE WHEN direction_correct THEN 1 ELSE 0 END) as correct_predictions,
    ROUND(AVG(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END), 4) as direction_accuracy,
    AVG(actual_return) as avg_actual_return,
    AVG(market_return) as avg_market_return,
    AVG(relative_performance) as avg_relative_performance,
    AVG(ABS(return_error)) as mean_absolute_error,
    STDDEV(return_error) as return_error_stddev,
    AVG(predicted_confidence) as avg_confidence,
    AVG(CASE WHEN predicted_confidence >= 0.8 THEN CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END END) as high_confidence_accuracy,
    AVG(CASE WHEN predicted_confidence < 0.6 THEN CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END END) as low_confidence_accuracy,
    CASE
        WHEN STDDEV(actual_return) > 0 THEN AVG(actual_return) / STDDEV(actual_return)
        ELSE NULL
    END as sharpe_ratio
FROM ml_outcomes
WHERE data_complete = true AND outlier_flag = false
GROUP BY DATE(outcome_timestamp);

CREATE UNIQUE INDEX IF NOT EXISTS idx_ml_daily_perf_date ON ml_daily_performance(date DESC);

CREATE MATERIALIZED VIEW IF NOT EXISTS ml_stock_performance AS
SELECT
    ticker,
    COUNT(*) as total_predictions,
    AVG(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END) as direction_accuracy,
    AVG(actual_return) as avg_return,
    AVG(relative_performance) as avg_relative_performance,
    MAX(outcome_timestamp) as last_outcome_timestamp
FROM ml_outcomes
WHERE data_complete = true AND outlier_flag = false
GROUP BY ticker
HAVING COUNT(*) >= 3;

CREATE UNIQUE INDEX IF NOT EXISTS idx_ml_stock_perf_ticker ON ml_stock_performance(ticker);

CREATE OR REPLACE FUNCTION refresh_ml_performance_views()
RETURNS void AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY ml_daily_performance;
    REFRESH MATERIALIZED VIEW CONCURRENTLY ml_stock_performance;
END;
$$ LANGUAGE plpgsql;

-- ------------------------------------- VFR's indexes on the ML tables that 001 lacked
-- (database/migrations/ml_phase1_schema_fixed.sql and ml_feature_store_optimizations.sql;
-- idx_ticker_feature_timestamp, idx_predictions_ticker_time and idx_predictions_horizon
-- are in 001 already)
CREATE INDEX IF NOT EXISTS idx_enhancement_active ON ml_enhancement_definitions (is_active, enhancement_type);
CREATE INDEX IF NOT EXISTS idx_enhancement_factor ON ml_enhancement_definitions (target_factor, is_active);
CREATE INDEX IF NOT EXISTS idx_feature_type_active ON ml_feature_definitions (feature_type, is_active);
CREATE INDEX IF NOT EXISTS idx_source_apis_gin ON ml_feature_definitions USING GIN (source_apis);
CREATE INDEX IF NOT EXISTS idx_timestamp_desc ON ml_feature_store (timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_quality_score ON ml_feature_store (data_quality_score) WHERE data_quality_score < 0.8;
CREATE INDEX IF NOT EXISTS idx_high_confidence ON ml_predictions (confidence_score DESC, prediction_timestamp DESC)
    WHERE confidence_score >= 0.8;
CREATE INDEX IF NOT EXISTS idx_model_status ON ml_models (status, model_type);
CREATE INDEX IF NOT EXISTS idx_model_tier ON ml_models (tier_requirement, status);
CREATE INDEX IF NOT EXISTS idx_metric_date ON ml_performance_metrics (metric_date DESC);
CREATE INDEX IF NOT EXISTS idx_feature_matrix_covering
    ON ml_feature_store (ticker, feature_id, timestamp DESC)
    INCLUDE (value, confidence_score, data_quality_score, validation_status)
    WHERE validation_status = 'valid';
CREATE INDEX IF NOT EXISTS idx_feature_type_covering
    ON ml_feature_store (ticker, timestamp DESC)
    INCLUDE (feature_id, value, confidence_score, data_quality_score)
    WHERE validation_status = 'valid';
CREATE INDEX IF NOT EXISTS idx_batch_symbols_covering
    ON ml_feature_store (feature_id, timestamp DESC)
    INCLUDE (ticker, value, data_quality_score, source_provider)
    WHERE validation_status = 'valid';

-- This project's earlier ml_predictions rows were price targets, which VFR's tracker and
-- metrics read as strong UP calls: they are removed (the same forecasts stay in
-- vfr_ml.predictions); rows of every other writer are left alone.
DELETE FROM ml_predictions
WHERE prediction_type = 'price_target'
  AND enhancement_id IN (
      SELECT enhancement_id FROM ml_enhancement_definitions
      WHERE enhancement_name IN ('vfr_ml_pipelines_1h', 'vfr_ml_pipelines_4h', 'vfr_ml_pipelines_1d',
                                 'vfr_ml_pipelines_1w', 'vfr_ml_pipelines_1m', 'vfr_ml_pipelines_3m'));
