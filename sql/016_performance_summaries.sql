-- VFR's performance views (ml_daily_performance, ml_stock_performance: what GET
-- /api/ml/metrics reads; 012 created them with VFR's definitions over ml_outcomes) kept from
-- growing with the outcome history. Refreshing them recomputed every outcome ever written,
-- on each fill. Now each view reads a small table kept current by triggers on ml_outcomes,
-- whoever writes it (our fill, VFR's own tracker, a cascade from ml_predictions):
--   * vfr_ml.daily_performance_rows: the view's rows, one per day; a statement that writes
--     outcomes re-aggregates, with the view's own SELECT, only the days it touched (one
--     index range per day);
--   * vfr_ml.stock_performance_sums: per ticker the count and sums the view's averages divide
--     (PostgreSQL's AVG(numeric) is exactly sum / count), updated by the rows a statement
--     inserted, changed or removed.
-- The views keep VFR's names, columns, types, rows and refresh function (VFR's own code
-- calls refresh_ml_performance_views(), which still refreshes two materialized views, now
-- over a few thousand rows). Days are dates in the writing session's TimeZone, as DATE()
-- was in the refreshing session's.

CREATE INDEX IF NOT EXISTS ml_outcomes_outcome_timestamp ON ml_outcomes (outcome_timestamp);

-- ml_daily_performance's definition (012, VFR's), for the days in `days` only
CREATE OR REPLACE FUNCTION vfr_ml.daily_performance_of(days date[])
RETURNS TABLE (
    date date, total_predictions bigint, correct_predictions bigint, direction_accuracy numeric,
    avg_actual_return numeric, avg_market_return numeric, avg_relative_performance numeric,
    mean_absolute_error numeric, return_error_stddev numeric, avg_confidence numeric,
    high_confidence_accuracy numeric, low_confidence_accuracy numeric, sharpe_ratio numeric
) AS $$
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
FROM ml_outcomes o
JOIN unnest(days) AS d(day)
  ON o.outcome_timestamp >= d.day::timestamptz AND o.outcome_timestamp < (d.day + 1)::timestamptz
WHERE data_complete = true AND outlier_flag = false
GROUP BY DATE(outcome_timestamp)
$$ LANGUAGE sql STABLE;

CREATE TABLE IF NOT EXISTS vfr_ml.daily_performance_rows AS
SELECT * FROM vfr_ml.daily_performance_of(ARRAY[]::date[]) WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS daily_performance_rows_date ON vfr_ml.daily_performance_rows (date);

CREATE TABLE IF NOT EXISTS vfr_ml.stock_performance_sums (
    ticker varchar(20) PRIMARY KEY,
    n bigint NOT NULL,                      -- COUNT(*)
    correct numeric NOT NULL,               -- SUM(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END)
    sum_return numeric NOT NULL,            -- SUM(actual_return)
    n_relative bigint NOT NULL,             -- COUNT(relative_performance)
    sum_relative numeric NOT NULL,          -- SUM(relative_performance), 0 when none
    last_outcome_timestamp timestamptz
);

-- the statement's outcome rows, signed (+1 added, -1 removed), added to the ticker sums and
-- their days re-aggregated; transition tables are visible only to the trigger's own function
CREATE OR REPLACE FUNCTION vfr_ml.outcomes_changed() RETURNS trigger AS $$
DECLARE
    delta text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, * FROM new_rows'
        WHEN 'UPDATE' THEN 'SELECT 1 AS sign, * FROM new_rows UNION ALL SELECT -1, * FROM old_rows'
        ELSE 'SELECT -1 AS sign, * FROM old_rows' END;
    days date[];
BEGIN
    EXECUTE replace($f$
        INSERT INTO vfr_ml.stock_performance_sums AS s
            (ticker, n, correct, sum_return, n_relative, sum_relative, last_outcome_timestamp)
        SELECT ticker, sum(sign), sum(sign * CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END),
               sum(sign * actual_return), sum(sign * (relative_performance IS NOT NULL)::int),
               coalesce(sum(sign * relative_performance), 0),
               max(outcome_timestamp) FILTER (WHERE sign > 0)
        FROM ({rows}) AS changed
        WHERE data_complete = true AND outlier_flag = false
        GROUP BY ticker
        ON CONFLICT (ticker) DO UPDATE SET
            n = s.n + EXCLUDED.n, correct = s.correct + EXCLUDED.correct,
            sum_return = s.sum_return + EXCLUDED.sum_return, n_relative = s.n_relative + EXCLUDED.n_relative,
            sum_relative = s.sum_relative + EXCLUDED.sum_relative,
            last_outcome_timestamp = greatest(s.last_outcome_timestamp, EXCLUDED.last_outcome_timestamp)
    $f$, '{rows}', delta);
    EXECUTE 'SELECT array_agg(DISTINCT DATE(outcome_timestamp)) FROM (' || delta || ') AS changed' INTO days;
    IF TG_OP <> 'INSERT' THEN
        -- a maximum cannot be taken back: the touched tickers' latest outcome, by index
        UPDATE vfr_ml.stock_performance_sums s
        SET last_outcome_timestamp = (
            SELECT max(o.outcome_timestamp) FROM ml_outcomes o
            WHERE o.ticker = s.ticker AND o.data_complete = true AND o.outlier_flag = false)
        WHERE s.ticker IN (SELECT ticker FROM old_rows);
        DELETE FROM vfr_ml.stock_performance_sums WHERE n = 0;
    END IF;
    IF days IS NOT NULL THEN
        DELETE FROM vfr_ml.daily_performance_rows WHERE date = ANY(days);
        INSERT INTO vfr_ml.daily_performance_rows SELECT * FROM vfr_ml.daily_performance_of(days);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION vfr_ml.outcomes_truncated() RETURNS trigger AS $$
BEGIN
    DELETE FROM vfr_ml.daily_performance_rows;
    DELETE FROM vfr_ml.stock_performance_sums;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- (a trigger with transition tables fires on one event only)
DROP TRIGGER IF EXISTS ml_outcomes_inserted ON ml_outcomes;
DROP TRIGGER IF EXISTS ml_outcomes_updated ON ml_outcomes;
DROP TRIGGER IF EXISTS ml_outcomes_deleted ON ml_outcomes;
DROP TRIGGER IF EXISTS ml_outcomes_truncated ON ml_outcomes;
CREATE TRIGGER ml_outcomes_inserted AFTER INSERT ON ml_outcomes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vfr_ml.outcomes_changed();
CREATE TRIGGER ml_outcomes_updated AFTER UPDATE ON ml_outcomes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vfr_ml.outcomes_changed();
CREATE TRIGGER ml_outcomes_deleted AFTER DELETE ON ml_outcomes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION vfr_ml.outcomes_changed();
CREATE TRIGGER ml_outcomes_truncated AFTER TRUNCATE ON ml_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION vfr_ml.outcomes_truncated();

-- the outcomes written before this migration, once (the triggers take over from here)
TRUNCATE vfr_ml.daily_performance_rows, vfr_ml.stock_performance_sums;
INSERT INTO vfr_ml.daily_performance_rows
SELECT * FROM vfr_ml.daily_performance_of(ARRAY(SELECT DISTINCT DATE(outcome_timestamp) FROM ml_outcomes));
INSERT INTO vfr_ml.stock_performance_sums
SELECT ticker, count(*), sum(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END), sum(actual_return),
       count(relative_performance), coalesce(sum(relative_performance), 0), max(outcome_timestamp)
FROM ml_outcomes
WHERE data_complete = true AND outlier_flag = false
GROUP BY ticker;

-- the views, same names and columns, over those tables (VFR's migration creates them only
-- IF NOT EXISTS, so running it after this one keeps these)
DROP MATERIALIZED VIEW IF EXISTS ml_daily_performance;
DROP MATERIALIZED VIEW IF EXISTS ml_stock_performance;

CREATE MATERIALIZED VIEW ml_daily_performance AS
SELECT date, total_predictions, correct_predictions, direction_accuracy, avg_actual_return, avg_market_return,
       avg_relative_performance, mean_absolute_error, return_error_stddev, avg_confidence,
       high_confidence_accuracy, low_confidence_accuracy, sharpe_ratio
FROM vfr_ml.daily_performance_rows;
CREATE UNIQUE INDEX IF NOT EXISTS idx_ml_daily_perf_date ON ml_daily_performance(date DESC);

CREATE MATERIALIZED VIEW ml_stock_performance AS
SELECT
    ticker,
    n AS total_predictions,
    correct / n AS direction_accuracy,
    sum_return / n AS avg_return,
    CASE WHEN n_relative > 0 THEN sum_relative / n_relative END AS avg_relative_performance,
    last_outcome_timestamp
FROM vfr_ml.stock_performance_sums
WHERE n >= 3;
CREATE UNIQUE INDEX IF NOT EXISTS idx_ml_stock_perf_ticker ON ml_stock_performance(ticker);
