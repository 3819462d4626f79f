-- The ML tables the live VFR reads (VFR_CONTRACT.md, "PostgreSQL").
-- Same table and column names, types and CHECK values as VFR's own migration, created
-- only when they do not exist, so this project and VFR can migrate the same database in
-- either order.

CREATE TABLE IF NOT EXISTS ml_enhancement_definitions (
    enhancement_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    enhancement_name varchar(255) NOT NULL UNIQUE,
    enhancement_type varchar(50) NOT NULL CHECK (enhancement_type IN (
        'price_prediction', 'direction_classification', 'volatility_forecast',
        'factor_enhancement', 'composite_enhancement')),
    target_factor varchar(50) CHECK (target_factor IN (
        'technical', 'fundamental', 'sentiment', 'macro', 'options', 'composite')),
    prediction_horizon varchar(20) NOT NULL CHECK (prediction_horizon IN ('1h', '4h', '1d', '1w', '1m', '3m')),
    enhancement_weight decimal(3,2) DEFAULT 0.10 CHECK (enhancement_weight BETWEEN 0 AND 1),
    min_confidence_threshold decimal(5,4) DEFAULT 0.50,
    is_active boolean DEFAULT true,
    tier_requirement varchar(20) DEFAULT 'premium' CHECK (tier_requirement IN ('free', 'premium', 'enterprise')),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ml_feature_definitions (
    feature_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    feature_name varchar(255) NOT NULL UNIQUE,
    feature_type varchar(50) NOT NULL CHECK (feature_type IN (
        'technical', 'fundamental', 'sentiment', 'macro', 'options', 'custom')),
    data_type varchar(50) NOT NULL CHECK (data_type IN ('float', 'integer', 'boolean', 'categorical', 'vector')),
    description text,
    source_apis text[],
    calculation_frequency varchar(20) NOT NULL CHECK (calculation_frequency IN (
        '1m', '5m', '15m', '1h', '4h', '1d', 'weekly', 'monthly')),
    is_active boolean DEFAULT true,
    feature_version integer DEFAULT 1,
    normalization_params jsonb,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ml_feature_store (
    ticker varchar(20) NOT NULL,
    timestamp timestamptz NOT NULL,
    feature_id uuid NOT NULL REFERENCES ml_feature_definitions(feature_id),
    value decimal(20,8),
    confidence_score decimal(5,4) CHECK (confidence_score >= 0 AND confidence_score <= 1),
    data_quality_score decimal(5,4) CHECK (data_quality_score >= 0 AND data_quality_score <= 1),
    source_provider varchar(100),
    validation_status varchar(20) DEFAULT 'pending' CHECK (validation_status IN ('pending', 'valid', 'invalid', 'stale')),
    created_at timestamptz DEFAULT now(),
    PRIMARY KEY (ticker, timestamp, feature_id)
);
CREATE INDEX IF NOT EXISTS idx_ticker_feature_timestamp ON ml_feature_store (ticker, feature_id, timestamp DESC);

CREATE TABLE IF NOT EXISTS ml_predictions (
    prediction_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticker varchar(20) NOT NULL,
    prediction_timestamp timestamptz NOT NULL,
    enhancement_id uuid NOT NULL REFERENCES ml_enhancement_definitions(enhancement_id),
    prediction_horizon varchar(20) NOT NULL,
    prediction_type varchar(50) NOT NULL CHECK (prediction_type IN ('price_target', 'direction', 'volatility', 'probability')),
    predicted_value decimal(15,8) NOT NULL,
    confidence_score decimal(5,4) NOT NULL CHECK (confidence_score BETWEEN 0 AND 1),
    current_price decimal(12,4) NOT NULL,
    base_vfr_score decimal(10,4),
    enhanced_score decimal(10,4),
    actual_value decimal(15,8),
    actual_timestamp timestamptz,
    prediction_error decimal(15,8),
    direction_correct boolean,
    execution_time_ms integer,
    cache_hit boolean DEFAULT false,
    tier_used varchar(20),
    created_at timestamptz DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_predictions_ticker_time ON ml_predictions (ticker, prediction_timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_predictions_horizon ON ml_predictions (prediction_horizon, prediction_timestamp DESC);

CREATE TABLE IF NOT EXISTS ml_models (
    model_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name varchar(255) NOT NULL,
    model_version varchar(50) NOT NULL,
    model_type varchar(100) NOT NULL CHECK (model_type IN (
        'linear_regression', 'logistic_regression', 'random_forest',
        'xgboost', 'lightgbm', 'lstm', 'transformer', 'ensemble')),
    objective varchar(100) NOT NULL CHECK (objective IN (
        'price_prediction', 'direction_classification', 'volatility_forecast', 'factor_enhancement')),
    target_variable varchar(255) NOT NULL,
    prediction_horizon varchar(20) NOT NULL,
    validation_score decimal(10,6),
    test_score decimal(10,6),
    tier_requirement varchar(20) DEFAULT 'premium' CHECK (tier_requirement IN ('free', 'premium', 'enterprise')),
    status varchar(50) DEFAULT 'training' CHECK (status IN ('training', 'validated', 'deployed', 'shadow', 'deprecated')),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    UNIQUE (model_name, model_version)
);

CREATE TABLE IF NOT EXISTS ml_performance_metrics (
    metric_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    metric_date date NOT NULL,
    total_predictions integer DEFAULT 0,
    successful_predictions integer DEFAULT 0,
    fallback_predictions integer DEFAULT 0,
    avg_latency_ms decimal(10,2),
    p95_latency_ms decimal(10,2),
    avg_confidence_score decimal(5,4),
    cache_hit_ratio decimal(5,4),
    direction_accuracy decimal(5,4),
    mean_absolute_error decimal(15,8),
    free_tier_predictions integer DEFAULT 0,
    premium_tier_predictions integer DEFAULT 0,
    enterprise_tier_predictions integer DEFAULT 0,
    created_at timestamptz DEFAULT now(),
    UNIQUE (metric_date)
);

-- updated_at maintenance, under the same function name VFR uses so either migration
-- order leaves one identical function.
CREATE OR REPLACE FUNCTION update_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS update_ml_enhancement_definitions_updated_at ON ml_enhancement_definitions;
CREATE TRIGGER update_ml_enhancement_definitions_updated_at BEFORE UPDATE ON ml_enhancement_definitions
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
DROP TRIGGER IF EXISTS update_ml_feature_definitions_updated_at ON ml_feature_definitions;
CREATE TRIGGER update_ml_feature_definitions_updated_at BEFORE UPDATE ON ml_feature_definitions
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
DROP TRIGGER IF EXISTS update_ml_models_updated_at ON ml_models;
CREATE TRIGGER update_ml_models_updated_at BEFORE UPDATE ON ml_models
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
