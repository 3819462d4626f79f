-- The out-of-sample walk-forward predictions of every candidate of every horizon (validation
-- and test segments), kept from training so that the backtests read them from the warehouse
-- instead of holding them in one process's memory. Each training of a horizon replaces that
-- horizon's rows; each row names the MLflow run and registered version it came from. Where
-- folds' windows overlap, the latest fold's prediction is kept (what the backtest trades).
CREATE TABLE IF NOT EXISTS vfr_ml.walk_forward_predictions (
    horizon varchar(4) NOT NULL,
    candidate text NOT NULL,
    segment text NOT NULL CHECK (segment IN ('val', 'test')),
    trade_date date NOT NULL,
    symbol varchar(20) NOT NULL,
    fold integer NOT NULL,
    score double precision,
    probability double precision,
    expected_return double precision,
    label double precision,
    mlflow_run_id text NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    PRIMARY KEY (horizon, candidate, segment, trade_date, symbol)
);
