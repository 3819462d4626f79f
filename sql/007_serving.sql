-- Serving: realized outcomes are filled into VFR's ml_predictions with one set-based UPDATE
-- (vfr_ml_pipelines/lib/serving/outcomes.py). Values written into VFR's decimal columns are
-- rounded half to even, the rule of the Python writers (vfr_tables.fit_decimal);
-- PostgreSQL's round() rounds half away from zero, so the two would disagree on exact ties.
CREATE OR REPLACE FUNCTION vfr_ml.round_half_even(value numeric, places integer) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        -- an exact tie: keep the even neighbour (truncation is toward zero, so an odd
        -- truncated value moves one step away from zero)
        WHEN abs(value * power(10::numeric, places) - trunc(value * power(10::numeric, places))) = 0.5
            THEN round(
                (trunc(value * power(10::numeric, places))
                 + CASE WHEN mod(trunc(value * power(10::numeric, places)), 2) = 0 THEN 0 ELSE sign(value) END)
                / power(10::numeric, places),
                places)
        ELSE round(value, places)
    END
$$;

-- Outcomes are matched to predictions by (ticker, as-of day, horizon); the roll-up reads
-- this project's rows by prediction and outcome time.
CREATE INDEX IF NOT EXISTS idx_ml_predictions_enhancement_time
    ON ml_predictions (enhancement_id, prediction_timestamp);
