-- Every change of a horizon's serving model (`vfr-{horizon}@champion`): promotions by the
-- gate and rollbacks. MLflow aliases keep no history; rollback reads it from here.
CREATE TABLE IF NOT EXISTS vfr_ml.champion_history (
    id bigserial PRIMARY KEY,
    horizon varchar(4) NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    previous_version text,
    action text NOT NULL CHECK (action IN ('promote', 'rollback')),
    reason text NOT NULL,
    dagster_run_id text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS champion_history_horizon ON vfr_ml.champion_history (horizon, id DESC);
